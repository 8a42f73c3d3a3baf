"""Time as the pure cores see it: a value passed in, never read from the system.

Daemons use `MonotonicClock`; tests use `vigil.testing.FakeClock`. Both give
seconds as a float from an arbitrary origin that only moves forward.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since an arbitrary origin; never goes backwards."""
        ...


class MonotonicClock:
    """The system's CLOCK_MONOTONIC (not affected by wall-clock jumps)."""

    def now(self) -> float:
        return time.monotonic()
