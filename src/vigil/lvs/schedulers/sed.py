"""sed: shortest expected delay, (active + 1) / weight."""

from __future__ import annotations

from collections.abc import Mapping

from vigil.lvs.schedulers.base import NO_LOAD, Flow, Load, Scheduler, load_of, usable
from vigil.lvs.table import RealKey


def shortest_expected_delay(scheduler: Scheduler, load: Mapping[RealKey, Load]) -> RealKey | None:
    best = None
    for dest in scheduler.dests:
        if not usable(dest, load):
            continue
        overhead = load_of(load, dest.key).active + 1
        if best is None or overhead * best[1] < best[0] * dest.weight:
            best = (overhead, dest.weight, dest.key)
    return None if best is None else best[2]


class ShortestExpectedDelay(Scheduler):
    name = "sed"

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        return shortest_expected_delay(self, load)
