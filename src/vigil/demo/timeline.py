"""A readable timeline: what happened, and when, measured from the scene's fault."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Timeline:
    """Prints one line per event with the time since the scene began (or its fault)."""

    out: TextIO = sys.stdout
    origin: float = field(default_factory=time.monotonic)
    fault: float | None = None
    #: what later stamps count from: "fault", or another reference point ("start")
    label: str = "fault"

    def scene(self, title: str) -> None:
        self.origin = time.monotonic()
        self.fault = None
        self.label = "fault"
        print(f"\n== {title}", file=self.out, flush=True)

    def mark_fault(self, what: str) -> None:
        self.fault = time.monotonic()
        self.label = "fault"
        self.event(f"FAULT: {what}")

    def mark(self, what: str, label: str = "start", at: float | None = None) -> None:
        """Count later stamps from `at` (default now): not every origin is a fault."""
        self.fault = time.monotonic() if at is None else at
        self.label = label
        self.event(what)

    def since_fault(self) -> float | None:
        return None if self.fault is None else time.monotonic() - self.fault

    def event(self, what: str) -> None:
        now = time.monotonic()
        if self.fault is not None:
            stamp = f"{self.label:<5}{now - self.fault:+8.3f}s"
        else:
            stamp = f"{now - self.origin:8.3f}s     "
        print(f"  [{stamp}] {what}", file=self.out, flush=True)

    def note(self, what: str) -> None:
        print(f"  {'':16} {what}", file=self.out, flush=True)
