"""nq: never queue: an idle destination first, else the shortest expected delay."""

from __future__ import annotations

from collections.abc import Mapping

from vigil.lvs.schedulers.base import NO_LOAD, Flow, Load, Scheduler, load_of, usable
from vigil.lvs.schedulers.sed import shortest_expected_delay
from vigil.lvs.table import RealKey


class NeverQueue(Scheduler):
    name = "nq"

    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        for dest in self.dests:
            if usable(dest, load) and load_of(load, dest.key).active == 0:
                return dest.key
        return shortest_expected_delay(self, load)
