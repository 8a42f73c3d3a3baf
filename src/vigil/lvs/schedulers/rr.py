"""rr: round robin over the destinations with a weight above 0."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vigil.lvs.schedulers.base import NO_LOAD, Flow, Load, Scheduler, usable
from vigil.lvs.table import RealKey


class RoundRobin(Scheduler):
    name = "rr"

    def __init__(self, flags: Sequence[str] = ()) -> None:
        super().__init__(flags)
        self._last: RealKey | None = None

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        dests = self.dests
        if not dests:
            return None
        start = 0
        if self._last is not None:
            keys = [d.key for d in dests]
            # Continue after the last pick even if the list changed meanwhile.
            start = next((i for i, k in enumerate(keys) if k > self._last), 0)
        for step in range(len(dests)):
            dest = dests[(start + step) % len(dests)]
            if usable(dest, load):
                self._last = dest.key
                return dest.key
        return None
