"""What a demo scene reports: its measurements for the summary table, and its problems.

The acceptance tests run the same scenes and assert on these results, so the
demo's claims and CI's checks can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.demo.timeline import Timeline
from vigil.lab import Lab


@dataclass
class SceneResult:
    """One scene's outcome. `problems` empty means every claim of the timeline held."""

    name: str
    #: Failover (or recovery) times in seconds, measured from the fault: label -> seconds.
    timings: dict[str, float] = field(default_factory=dict)
    #: Requests or queries the client saw fail once vigil had reacted to a fault
    #: (detected it and took over); failures during a reaction go in `notes`.
    requests_failed: int | None = None
    #: Rows the client saw committed that were missing afterwards.
    rows_lost: int | None = None
    #: Anything that contradicts what the scene claims, one line each.
    problems: list[str] = field(default_factory=list)
    #: Other figures worth a line in the summary (label -> text).
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def expect(self, condition: bool, problem: str) -> bool:
        """Record `problem` unless `condition` holds; returns the condition."""
        if not condition:
            self.problems.append(problem)
        return condition


#: A scene: given a fresh seed lab and the timeline, it plays and reports.
Scene = Callable[[Lab, Timeline], SceneResult]


def summary_table(results: list[SceneResult]) -> list[str]:
    """The demo's closing table: a row per scene, its timings and notes beneath."""
    header = f"{'scene':<24} {'failed':>6} {'lost':>5}  result"
    lines = [header, "-" * 60]
    for result in results:
        failed = "-" if result.requests_failed is None else str(result.requests_failed)
        lost = "-" if result.rows_lost is None else str(result.rows_lost)
        verdict = "ok" if result.passed else "PROBLEM"
        lines.append(f"{result.name:<24} {failed:>6} {lost:>5}  {verdict}")
        if result.timings:
            lines.append("    " + ", ".join(f"{label} {seconds:.2f} s"
                                           for label, seconds in result.timings.items()))
        for label, text in result.notes.items():
            lines.append(f"    {label}: {text}")
        for problem in result.problems:
            lines.append(f"    problem: {problem}")
    lines.append("-" * 60)
    lines.append("failed: client requests that failed once vigil had reacted to a fault;"
                 " lost: committed rows missing afterwards")
    return lines
