"""wlc: weighted least connections, IPVS's default: the lowest overhead per weight."""

from __future__ import annotations

from collections.abc import Mapping

from vigil.lvs.schedulers.base import NO_LOAD, Flow, Load, Scheduler, load_of, usable
from vigil.lvs.table import RealKey


class WeightedLeastConnection(Scheduler):
    name = "wlc"

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        best = None
        for dest in self.dests:
            if not usable(dest, load):
                continue
            overhead = load_of(load, dest.key).overhead
            # overhead/weight < best_overhead/best_weight, without division
            if best is None or overhead * best[1] < best[0] * dest.weight:
                best = (overhead, dest.weight, dest.key)
        return None if best is None else best[2]
