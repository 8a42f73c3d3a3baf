"""wrr: weighted round robin, interleaved as IPVS does it.

Each pass lowers a current weight by the weights' greatest common divisor and
takes, in order, every destination whose weight reaches it: with weights 4, 3,
2 the sequence is AAB AABC ABC (4:3:2), never long runs of one server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import gcd

from vigil.lvs.schedulers.base import NO_LOAD, Dest, Flow, Load, Scheduler, usable
from vigil.lvs.table import RealKey


class WeightedRoundRobin(Scheduler):
    name = "wrr"

    def __init__(self, flags: Sequence[str] = ()) -> None:
        super().__init__(flags)
        self._index = -1
        self._current = 0

    def update(self, dests: Sequence[Dest]) -> None:
        super().update(dests)
        self._index = -1
        self._current = 0

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        dests = [d for d in self.dests if usable(d, load)]
        if not dests:
            return None
        step = 0
        for d in dests:
            step = gcd(step, d.weight)
        top = max(d.weight for d in dests)
        for _ in range(len(dests) * (top // step + 1)):
            self._index = (self._index + 1) % len(dests)
            if self._index == 0:
                self._current -= step
                if self._current <= 0:
                    self._current = top
            if dests[self._index].weight >= self._current:
                return dests[self._index].key
        return None  # pragma: no cover - the loop always finds one
