"""The campaign's output: a timeline line per fault and reaction, a summary table, JSON.

Pure: it formats the checker's outcomes and the observed samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vigil.torture.checks import (
    DUAL_BOUND,
    RESOLVE_BOUND,
    SETTLE_BOUND,
    KindRow,
    Outcome,
    Sample,
    summarize,
)
from vigil.torture.schedule import Timing


def transitions(samples: Sequence[Sample], start: float, end: float) -> list[tuple[float, str]]:
    """Who carried the VIP, each time it changed in [start, end], as (time, "a+b" | "none")."""
    changes: list[tuple[float, str]] = []
    last: frozenset[str] | None = None
    for sample in samples:
        if not start <= sample.at <= end:
            continue
        if sample.holders != last:
            changes.append((sample.at, "+".join(sorted(sample.holders)) or "none"))
            last = sample.holders
    return changes


def steady_transitions(samples: Sequence[Sample], start: float, end: float,
                       looks: int = 2) -> list[tuple[float, str]]:
    """`transitions`, keeping only states seen in `looks` samples in a row (a lost or
    late ARP reply is not a change)."""
    window = [s for s in samples if start <= s.at <= end]
    changes: list[tuple[float, str]] = []
    last: frozenset[str] | None = None
    for index in range(len(window) - looks + 1):
        run = window[index:index + looks]
        holders = run[0].holders
        if holders != last and all(s.holders == holders for s in run):
            changes.append((run[0].at, "+".join(sorted(holders)) or "nobody"))
            last = holders
    return changes


def arp_lines(outcome: Outcome, answers: Sequence[Sample],
              cache: Sequence[tuple[float, str | None]], until: float) -> list[str]:
    """The client's side of one fault: who answered ARP for the VIP, and which host its
    neighbour entry named, each time that changed."""
    i = outcome.injected
    lines = [f"{'':12}ARP answers from {who} +{at - i.injected:.2f} s"
             for at, who in steady_transitions(answers, i.injected, until)]
    named = [Sample(at, frozenset({host}) if host else frozenset()) for at, host in cache]
    lines += [f"{'':12}client's entry names {who} +{at - i.injected:.2f} s"
              for at, who in steady_transitions(named, i.injected, until)]
    return lines


def fault_lines(outcome: Outcome, samples: Sequence[Sample], origin: float,
                until: float) -> list[str]:
    """The timeline's lines for one fault: what was done, what the VIP did, the verdict."""
    i = outcome.injected
    lines = [f"[{i.injected - origin:8.2f}s] FAULT #{i.fault.index} {i.fault.kind.value} on "
             f"{i.target}: {i.fault.describe()}"]
    lines.append(f"{'':12}healed +{i.healed - i.injected:.2f} s"
                 + (f" ({i.note})" if i.note else ""))
    for at, holders in transitions(samples, i.injected, until):
        lines.append(f"{'':12}VIP on {holders} +{at - i.injected:.2f} s")
    settle = outcome.settle_time
    lines.append(
        f"{'':12}" + (f"settled {settle:.2f} s after the heal on {outcome.holder_after}"
                      if settle is not None else "NOT settled")
        + f"; client outage {outcome.outage:.2f} s ({outcome.failed_queries} queries failed)"
        + ("; failover" if outcome.moved else "")
        + (" (spurious)" if outcome.spurious else "")
        + (f"; VIP on both nodes {outcome.dual:.2f} s" if outcome.dual else ""))
    lines.extend(f"{'':12}VIOLATION: {v}" for v in outcome.violations)
    return lines


def table(setup: str, outcomes: Sequence[Outcome], rows_lost: int | None,
          final: Sequence[str]) -> list[str]:
    """The summary table of one setup, one line per kind of fault and a total."""
    rows = summarize(outcomes)
    total = KindRow("total", sum(r.injected for r in rows),
                    sum(r.violations for r in rows) + len(final),
                    max((r.worst_outage for r in rows), default=0.0),
                    max((r.worst_settle for r in rows), default=0.0),
                    sum(r.spurious for r in rows), sum(r.failovers for r in rows))
    lines = [f"setup {setup}:",
             f"| {'fault':<15} | {'injected':>8} | {'violations':>10} | {'worst outage':>12} "
             f"| {'worst settle':>12} | {'failovers':>9} | {'spurious':>8} |",
             f"|{'-' * 17}|{'-' * 9}:|{'-' * 11}:|{'-' * 13}:|{'-' * 13}:|{'-' * 10}:"
             f"|{'-' * 9}:|"]
    for row in [*rows, total]:
        lines.append(f"| {row.kind:<15} | {row.injected:>8} | {row.violations:>10} | "
                     f"{row.worst_outage:>10.2f} s | {row.worst_settle:>10.2f} s | "
                     f"{row.failovers:>9} | {row.spurious:>8} |")
    lines.append(f"acked rows lost: {'-' if rows_lost is None else rows_lost}")
    lines.extend(f"VIOLATION at the end: {v}" for v in final)
    return lines


def bounds(timing: Timing) -> list[str]:
    """The bounds the checker holds the campaign to, as the report states them."""
    return [f"bounds: settled within deadtime + {SETTLE_BOUND:g} s = "
            f"{timing.deadtime + SETTLE_BOUND:g} s of each heal; the VIP on both nodes at most "
            f"{DUAL_BOUND:g} s outside a split (partition, stall, loss, delay), and at most "
            f"deadtime + {RESOLVE_BOUND:g} s = {timing.deadtime + RESOLVE_BOUND:g} s after a "
            "split heals"]


def document(setup: str, seed: int, timing: Timing, outcomes: Sequence[Outcome],
             rows_lost: int | None, final: Sequence[str], seconds: float,
             notes: Sequence[str] = ()) -> dict[str, Any]:
    """The `--json` record of one campaign."""
    return {
        "setup": setup, "seed": seed, "seconds": round(seconds, 1),
        "timing": {"keepalive": timing.keepalive, "deadtime": timing.deadtime},
        "faults": [o.to_json() for o in outcomes],
        "summary": [vars(r) for r in summarize(outcomes)],
        "violations": sum(len(o.violations) for o in outcomes) + len(final),
        "final_violations": list(final),
        "acked_rows_lost": rows_lost,
        "notes": list(notes),
    }
