"""Schedulers, one per module, in an explicit registry (ipvsadm -s NAME)."""

from __future__ import annotations

from collections.abc import Sequence

from vigil.director.schedulers.base import Dest, Flow, Load, Scheduler
from vigil.director.schedulers.dh import DestinationHashing
from vigil.director.schedulers.lc import LeastConnection
from vigil.director.schedulers.mh import MaglevHashing
from vigil.director.schedulers.nq import NeverQueue
from vigil.director.schedulers.rr import RoundRobin
from vigil.director.schedulers.sed import ShortestExpectedDelay
from vigil.director.schedulers.sh import SourceHashing
from vigil.director.schedulers.wlc import WeightedLeastConnection
from vigil.director.schedulers.wrr import WeightedRoundRobin

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
