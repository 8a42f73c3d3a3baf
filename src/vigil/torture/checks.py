"""The campaign's checker: observations in, outcomes and invariant violations out.

Pure: the shell records what it saw (who carried the VIP on its interfaces, what
the client was answered) with its own clock; everything judged is judged here,
from those records alone, so the verdicts are unit-tested on made-up timelines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.torture.schedule import Fault, FaultKind, Role, Timing

#: Once a fault is healed, one node must hold the group and serve the client within
#: deadtime + this many seconds (a MariaDB start on a loaded two-core machine takes up
#: to ~5 s; a failback (auto_failback on) stops it on one node first).
SETTLE_BOUND = 15.0
#: Outside a split (partition, stall, loss, delay) the VIP may be on both nodes at most
#: this long.
DUAL_BOUND = 1.0
#: After a split heals, the VIP must be on one node only within deadtime + this.
RESOLVE_BOUND = 5.0
#: How long the settled state must hold before the shell calls a fault settled.
STABLE = 2.0

#: Faults during which both nodes may rightly hold the VIP: heartbeat v1 has no fencing,
#: and a node cut off (or silent) for deadtime is dead to its peer.
SPLITS = frozenset({FaultKind.PARTITION, FaultKind.STALL, FaultKind.LOSS, FaultKind.DELAY})


@dataclass(frozen=True)
class Sample:
    """One look at the nodes' interfaces: which of them carried the VIP at `at`."""

    at: float
    holders: frozenset[str]


@dataclass(frozen=True)
class Query:
    """One client request through the VIP: sent `at`, finished `done`, answered or not."""

    at: float
    done: float
    ok: bool
    node: str | None = None


@dataclass(frozen=True)
class Injected:
    """What the shell did for one fault: on which node, when, and when it healed it."""

    fault: Fault
    target: str
    injected: float
    healed: float
    #: the node that carried the group just before the fault
    holder_before: str | None
    #: what the shell saw while doing it, for the timeline ("" if nothing)
    note: str = ""


@dataclass
class Outcome:
    """One fault judged: the reaction measured and the invariants it broke."""

    injected: Injected
    settled: float | None
    #: the node that held the group once the fault settled
    holder_after: str | None
    outage: float
    failed_queries: int
    moved: bool
    spurious: bool
    dual: float
    violations: list[str] = field(default_factory=list)

    @property
    def settle_time(self) -> float | None:
        s = self.settled
        return None if s is None else s - self.injected.healed

    def to_json(self) -> dict[str, Any]:
        i = self.injected
        return {"fault": i.fault.to_json(), "target": i.target, "injected": i.injected,
                "healed": i.healed, "holder_before": i.holder_before, "note": i.note,
                "settled": self.settled, "holder_after": self.holder_after,
                "settle_time": self.settle_time, "outage": self.outage,
                "failed_queries": self.failed_queries, "moved": self.moved,
                "spurious": self.spurious, "dual": self.dual, "violations": self.violations}


# -- single measures -------------------------------------------------------------------------
def settled_at(samples: Sequence[Sample], queries: Sequence[Query], since: float,
               until: float, home: str | None = None,
               stable: float = STABLE) -> tuple[float, str] | None:
    """The earliest moment ≥ `since` from which, up to `until` (at least `stable` s), one
    node alone held the VIP (`home`, if given) and every client query sent was answered
    by it (at least one was); with that node. None: the setup never settled in the window.
    """
    window = [s for s in samples if since <= s.at <= until]
    start: float | None = None
    holder: str | None = None
    for sample in window:
        alone = next(iter(sample.holders)) if len(sample.holders) == 1 else None
        if alone is not None and alone == (home or alone):
            if start is None or alone != holder:
                start, holder = sample.at, alone
        else:
            start = holder = None
    if start is None or holder is None:
        return None
    later = [q for q in queries if q.at >= start and q.done <= until]
    bad = [q.at for q in later if not (q.ok and q.node == holder)]
    if bad:
        start = max(bad) + 1e-6
    if window[-1].at - start < stable:
        return None
    return (start, holder) if any(q.at >= start for q in later) else None


def outage(queries: Sequence[Query], start: float, end: float) -> tuple[float, int]:
    """The longest client outage among queries sent in [start, end], and the failures.

    An outage runs from the sending of a failed query to the answer of the first query
    sent after it that succeeded (or `end`, if none did).
    """
    sent = sorted((q for q in queries if start <= q.at <= end), key=lambda q: q.at)
    worst, failures, began = 0.0, 0, None
    for query in sent:
        if not query.ok:
            failures += 1
            if began is None:
                began = query.at
        elif began is not None:
            worst = max(worst, query.done - began)
            began = None
    if began is not None:
        worst = max(worst, end - began)
    return worst, failures


def dual_windows(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """Spans during which two or more nodes carried the VIP (first to last such sample)."""
    spans: list[tuple[float, float]] = []
    begun: float | None = None
    last = 0.0
    for sample in samples:
        if len(sample.holders) > 1:
            if begun is None:
                begun = sample.at
            last = sample.at
        elif begun is not None:
            spans.append((begun, sample.at))
            begun = None
    if begun is not None:
        spans.append((begun, last))
    return spans


def may_move(fault: Fault, timing: Timing) -> bool:
    """Whether the group may rightly leave its node during `fault`."""
    if fault.kind in (FaultKind.PARTITION, FaultKind.LOSS, FaultKind.DELAY,
                      FaultKind.STOP_FAILS):
        return True  # stop-fails: the node was asked to stand by
    if fault.kind in (FaultKind.DISK_ERROR, FaultKind.BAD_BLOCKS):  # diskless at worst,
        # then attached under the service
        return False
    if fault.role is not Role.ACTIVE:
        return False
    if fault.kind in (FaultKind.POWER_OFF, FaultKind.CUT_THEN_CRASH):
        return True
    if fault.kind in (FaultKind.STALL, FaultKind.KILL_DAEMON):
        return fault.hold >= timing.deadtime - timing.keepalive
    return False


# -- one fault, the whole campaign -----------------------------------------------------------
def judge(injected: Injected, samples: Sequence[Sample], queries: Sequence[Query],
          until: float, timing: Timing) -> Outcome:
    """Judge one fault over its window [injected, until): settle, outage, moves, dual VIP."""
    fault = injected.fault
    window = [s for s in samples if injected.injected <= s.at <= until]
    found = settled_at(samples, queries, injected.healed, until)
    settled, holder = found if found else (None, None)
    worst, failures = outage(queries, injected.injected, until)
    before = injected.holder_before
    moved = any(len(s.holders) == 1 and before is not None and before not in s.holders
                for s in window)
    outcome = Outcome(injected, settled, holder, worst, failures, moved,
                      moved and not may_move(fault, timing), 0.0)
    limit = timing.deadtime + SETTLE_BOUND
    if settled is None:
        outcome.violations.append(
            "not settled: no node held the VIP alone and served the client within "
            f"{until - injected.healed:.1f} s of the heal")
    elif settled - injected.healed > limit:
        outcome.violations.append(
            f"settled {settled - injected.healed:.1f} s after the heal (bound {limit:g} s)")
    for start, end in dual_windows(window):
        outcome.dual = max(outcome.dual, end - start)
        if fault.kind in SPLITS and start <= injected.healed:
            if end - injected.healed > timing.deadtime + RESOLVE_BOUND:
                outcome.violations.append(
                    f"the VIP stayed on both nodes {end - injected.healed:.1f} s after the "
                    f"heal (bound {timing.deadtime + RESOLVE_BOUND:g} s)")
        elif end - start > DUAL_BOUND:
            outcome.violations.append(
                f"the VIP was on both nodes for {end - start:.1f} s (bound {DUAL_BOUND:g} s)")
    return outcome


@dataclass
class KindRow:
    """The summary table's line for one kind of fault."""

    kind: str
    injected: int = 0
    violations: int = 0
    worst_outage: float = 0.0
    worst_settle: float = 0.0
    spurious: int = 0
    failovers: int = 0


def summarize(outcomes: Sequence[Outcome]) -> list[KindRow]:
    """Faults by kind: how many, violations, worst outage and settle, failovers."""
    rows: dict[str, KindRow] = {}
    for outcome in outcomes:
        kind = outcome.injected.fault.kind.value
        row = rows.setdefault(kind, KindRow(kind))
        row.injected += 1
        row.violations += len(outcome.violations)
        row.worst_outage = max(row.worst_outage, outcome.outage)
        row.worst_settle = max(row.worst_settle, outcome.settle_time or 0.0)
        row.failovers += outcome.moved
        row.spurious += outcome.spurious
    return [rows[k] for k in sorted(rows)]


@dataclass(frozen=True)
class Rows:
    """What the replicated database's client was told, against what the table holds."""

    lost: tuple[int, ...]
    phantom: tuple[int, ...]
    in_flight: int


def check_rows(acknowledged: set[int], attempted: set[int], present: set[int]) -> Rows:
    """Acknowledged rows missing (lost), rows never sent (phantom), and the unknown middle:
    sent, not acknowledged, present (committed as the connection failed: allowed)."""
    return Rows(tuple(sorted(acknowledged - present)), tuple(sorted(present - attempted)),
                len((present & attempted) - acknowledged))


def split_losses(lost: Sequence[int], acked_at: Mapping[int, float],
                 windows: Sequence[tuple[float, float]]) -> tuple[list[int], list[int]]:
    """Lost rows acknowledged inside a volume split brain's window (from the fault that
    split the nodes to the recovery that discarded one side's changes), and the rest.

    Without fencing, a partition longer than deadtime lets both nodes promote; the
    recovery keeps one side's data, so rows acknowledged meanwhile may be gone: that
    is the configuration's known cost, reported apart. Any other loss is a violation.
    """
    explained: list[int] = []
    unexplained: list[int] = []
    for row in lost:
        when = acked_at.get(row)
        inside = when is not None and any(start <= when <= end for start, end in windows)
        (explained if inside else unexplained).append(row)
    return explained, unexplained


# -- the replicated volume ----------------------------------------------------------------------
def writable_primary(status: Mapping[str, Any]) -> bool:
    """Whether a volume's status says it takes writes: Primary, its I/O not suspended."""
    return status.get("role") == "Primary" and not status.get("io_suspended")


def in_sync(status: Mapping[str, Any]) -> bool:
    """Whether a volume's status says both disks are equal: connected, no resync, both
    UpToDate, nothing marked out of sync."""
    return (status.get("replication") == "Established" and status.get("disk") == "UpToDate"
            and status.get("peer_disk") == "UpToDate" and status.get("out_of_sync") == 0)


def unexcused_spans(spans: Sequence[tuple[float, float]], injected: Sequence[Injected],
                    timing: Timing, allowed: float = 0.0) -> list[tuple[float, float]]:
    """The spans (of two nodes holding what one may hold) longer than `allowed` that
    overlap no split fault's window: from the fault's injection to its heal plus
    deadtime and the resolve bound. A split (the nodes cut off or silent past
    deadtime) lets both take over where the configuration has no fencing, as
    heartbeat's and DRBD's do; anywhere else it is a violation."""
    windows = [(i.injected, i.healed + timing.deadtime + RESOLVE_BOUND)
               for i in injected if i.fault.kind in SPLITS]
    return [(start, end) for start, end in spans if end - start > allowed
            and not any(start <= w_end and end >= w_start for w_start, w_end in windows)]
