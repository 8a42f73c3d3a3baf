"""Schedulers, one per module, in an explicit registry (ipvsadm -s NAME)."""

from __future__ import annotations

from collections.abc import Sequence

from vigil.lvs.schedulers.base import Dest, Flow, Load, Scheduler
from vigil.lvs.schedulers.dh import DestinationHashing
from vigil.lvs.schedulers.lc import LeastConnection
from vigil.lvs.schedulers.mh import MaglevHashing
from vigil.lvs.schedulers.nq import NeverQueue
from vigil.lvs.schedulers.rr import RoundRobin
from vigil.lvs.schedulers.sed import ShortestExpectedDelay
from vigil.lvs.schedulers.sh import SourceHashing
from vigil.lvs.schedulers.wlc import WeightedLeastConnection
from vigil.lvs.schedulers.wrr import WeightedRoundRobin

SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.name: cls
    for cls in (
        RoundRobin,
        WeightedRoundRobin,
        LeastConnection,
        WeightedLeastConnection,
        ShortestExpectedDelay,
        NeverQueue,
        SourceHashing,
        DestinationHashing,
        MaglevHashing,
    )
}


def make_scheduler(name: str, flags: Sequence[str] = ()) -> Scheduler:
    try:
        return SCHEDULERS[name](flags)
    except KeyError:
        known = ", ".join(sorted(SCHEDULERS))
        raise ValueError(f"unknown scheduler {name!r} (known: {known})") from None


__all__ = ["SCHEDULERS", "Dest", "Flow", "Load", "Scheduler", "make_scheduler"]
