"""lc: least connections (an active connection counts as 256 inactive ones)."""

from __future__ import annotations

from collections.abc import Mapping

from vigil.lvs.schedulers.base import NO_LOAD, Flow, Load, Scheduler, load_of, usable
from vigil.lvs.table import RealKey


class LeastConnection(Scheduler):
    name = "lc"

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        best: RealKey | None = None
        best_overhead = 0
        for dest in self.dests:
            if not usable(dest, load):
                continue
            overhead = load_of(load, dest.key).overhead
            if best is None or overhead < best_overhead:
                best, best_overhead = dest.key, overhead
        return best
