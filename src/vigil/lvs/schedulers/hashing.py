"""What sh, dh and mh share: a slot table indexed by a stable hash of the flow."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vigil.lvs.schedulers.base import (
    NO_LOAD,
    Dest,
    Flow,
    Load,
    Scheduler,
    address_bytes,
    stable_hash,
    usable,
)
from vigil.lvs.schedulers.slots import DEFAULT_SIZE, fill_slots
from vigil.lvs.table import RealKey


class SlotScheduler(Scheduler):
    """Hash the flow into a fixed slot table; `<name>-fallback` skips unusable owners."""

    hashing = True
    size = DEFAULT_SIZE

    def __init__(self, flags: Sequence[str] = ()) -> None:
        super().__init__(flags)
        self.slots: tuple[RealKey, ...] = ()
        self._by_key: dict[RealKey, Dest] = {}

    def update(self, dests: Sequence[Dest]) -> None:
        super().update(dests)
        weights = {d.key: d.weight for d in dests}
        self.slots = fill_slots(weights, self.size, previous=self.slots or None)
        self._by_key = {d.key: d for d in dests}

    def flow_bytes(self, flow: Flow) -> bytes:
        raise NotImplementedError

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        if not self.slots:
            return None
        h = stable_hash(self.flow_bytes(flow), self.name.encode())
        owner = self.slots[h % len(self.slots)]
        if not self.dests_usable_check(owner, load):
            if f"{self.name}-fallback" not in self.flags:
                return None
            # Next slots in a flow-specific order, so a failed owner's flows spread out.
            step = h // len(self.slots) % (len(self.slots) - 1) + 1
            for i in range(1, len(self.slots)):
                candidate = self.slots[(h + i * step) % len(self.slots)]
                if self.dests_usable_check(candidate, load):
                    return candidate
            return None
        return owner

    def dests_usable_check(self, key: RealKey, load: Mapping[RealKey, Load]) -> bool:
        dest = self._by_key.get(key)
        return dest is not None and usable(dest, load)


def source_bytes(flow: Flow, with_port: bool) -> bytes:
    data = address_bytes(flow.src)
    return data + flow.sport.to_bytes(2, "big") if with_port else data
