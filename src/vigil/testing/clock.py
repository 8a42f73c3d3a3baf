"""A clock that moves only when the test says so."""

from __future__ import annotations


class FakeClock:
    """Implements `vigil.clock.Clock`; `advance()` and `set()` move it forward."""

    def __init__(self, start: float = 1000.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError(f"a clock does not go backwards ({when} < {self._now})")
        self._now = float(when)
