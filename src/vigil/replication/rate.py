"""Resync rate control (pure, injected clock): fixed rate, or DRBD's adaptive controller.

Both answer one question at each step: how many bytes may the resync put on
the wire now? The fixed controller is a token bucket at `resync-rate`. The
adaptive one (`c-plan-ahead` > 0) aims to keep either `c-fill-target` bytes
in flight or, if that is 0, enough to fill `c-delay-target` of the measured
throughput, spreading corrections over the plan-ahead window, never above
`c-max-rate`. Both slow down to `c-min-rate` while application I/O is seen, so
a resync does not starve the application.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

STEP = 0.1  # seconds between controller steps (DRBD's SLEEP_TIME)


@dataclass(frozen=True)
class RateSettings:
    resync_rate: int = 100 << 20  # bytes/s, fixed mode
    c_plan_ahead: float = 2.0  # seconds; 0 = fixed rate
    c_fill_target: int = 16 << 20  # bytes in flight to aim for (0: use the delay target)
    c_delay_target: float = 0.1  # seconds
    c_max_rate: int = 400 << 20  # bytes/s
    c_min_rate: int = 4 << 20  # bytes/s kept while the application does I/O (0: no throttling)

    @property
    def adaptive(self) -> bool:
        return self.c_plan_ahead > 0


class FixedRate:
    """A token bucket; the burst is one step's worth."""

    def __init__(self, rate: int, now: float):
        self.rate = rate
        self._tokens = rate * STEP
        self._last = now

    def allowance(self, now: float) -> int:
        self._tokens = min(self.rate * STEP, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return max(0, int(self._tokens))

    def consume(self, amount: int) -> None:
        self._tokens -= amount

    def next_deadline(self, now: float) -> float:
        if self._tokens > 0:
            return now
        return now + (-self._tokens) / self.rate if self.rate else now + STEP


class AdaptiveRate:
    """DRBD's dynamic resync-speed controller, in bytes rather than sectors."""

    def __init__(self, settings: RateSettings, now: float):
        self.settings = settings
        steps = max(1, round(settings.c_plan_ahead / STEP))
        self._plan: deque[float] = deque([0.0] * steps, maxlen=steps)
        self._last = now
        self._budget = 0.0

    def step(self, acked: int, in_flight: int, app_io: bool) -> int:
        """One controller step: bytes to request now, given bytes acked since the last step."""
        s = self.settings
        steps = len(self._plan)
        want = float(s.c_fill_target) if s.c_fill_target else acked * s.c_delay_target / STEP
        correction = want - in_flight - sum(self._plan)
        per_step = correction / steps
        self._plan = deque((p + per_step for p in self._plan), maxlen=steps)
        current = self._plan.popleft()
        self._plan.append(0.0)
        request = max(0.0, acked + current)
        if acked == 0 and in_flight == 0:
            # Get going: half the fill target (or the minimum rate) in the first step.
            request = max(request, s.c_fill_target / 2 or s.c_min_rate * STEP or 64 * 1024)
        request = min(request, s.c_max_rate * STEP)
        if app_io and s.c_min_rate:
            request = min(request, s.c_min_rate * STEP)
        return int(request)


class ResyncPacer:
    """The controller the resync loop uses: `allowance(now, ...)` bytes, `consume` them."""

    def __init__(self, settings: RateSettings, now: float):
        self.settings = settings
        self.fixed = None if settings.adaptive else FixedRate(settings.resync_rate, now)
        self.adaptive = AdaptiveRate(settings, now) if settings.adaptive else None
        self._next_step = now
        self._budget = 0
        self._acked = 0

    def acked(self, amount: int) -> None:
        self._acked += amount

    def allowance(self, now: float, in_flight: int, app_io: bool) -> int:
        if self.fixed is not None:
            allowed = self.fixed.allowance(now)
            if app_io and self.settings.c_min_rate:
                allowed = min(allowed, int(self.settings.c_min_rate * STEP))
            return allowed
        assert self.adaptive is not None
        if now >= self._next_step:
            self._budget = self.adaptive.step(self._acked, in_flight, app_io)
            self._acked = 0
            self._next_step = now + STEP
        return self._budget

    def consume(self, amount: int) -> None:
        if self.fixed is not None:
            self.fixed.consume(amount)
        else:
            self._budget = max(0, self._budget - amount)

    def next_deadline(self, now: float) -> float:
        if self.fixed is not None:
            return self.fixed.next_deadline(now)
        return self._next_step
