"""Reconnect and liveness timing for the peer link (pure, injected clock).

DRBD retries a failed connection every `connect-int` seconds, sends a ping
after `ping-int` seconds without traffic and gives the peer `ping-timeout` to
answer; a write the peer has not acknowledged within `timeout` x `ko-count`
gets the peer expelled. Each method takes `now` and returns what to do and
when to look again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkSettings:
    connect_int: float = 10.0
    ping_int: float = 10.0
    ping_timeout: float = 0.5
    timeout: float = 6.0
    ko_count: int = 7


class ConnectTimer:
    """When to try (or accept) the next connection."""

    def __init__(self, settings: LinkSettings, now: float):
        self.settings = settings
        self._next = now  # first attempt at once
        self.attempts = 0

    def due(self, now: float) -> bool:
        return now >= self._next

    def failed(self, now: float) -> float:
        """An attempt failed: the next one waits connect-int (the first retry sooner)."""
        self.attempts += 1
        delay = self.settings.connect_int if self.attempts > 1 else min(
            1.0, self.settings.connect_int)
        self._next = now + delay
        return self._next

    def lost(self, now: float) -> float:
        """An established link broke: try again right away, then back off."""
        self.attempts = 0
        self._next = now
        return self._next

    def next_deadline(self) -> float:
        return self._next


class Liveness(enum.Enum):
    OK = "ok"
    SEND_PING = "send ping"
    DEAD = "peer silent past ping-timeout"
    STALLED = "write unacknowledged past timeout x ko-count"


class PingTimer:
    def __init__(self, settings: LinkSettings, now: float):
        self.settings = settings
        self._last_heard = now
        self._ping_sent: float | None = None

    def heard(self, now: float) -> None:
        self._last_heard = now
        self._ping_sent = None

    @property
    def probing(self) -> bool:
        """A ping is out and unanswered."""
        return self._ping_sent is not None

    def probe(self, now: float) -> bool:
        """Ask now, without waiting for ping-int (a promotion must know whether its primary
        peer still lives: an idle link can hide a dead peer for ping-int).

        True when a ping must be sent; False when the peer spoke within ping-timeout
        (it lives) or a ping is already out.
        """
        if self._ping_sent is not None or now - self._last_heard < self.settings.ping_timeout:
            return False
        self._ping_sent = now
        return True

    def check(self, now: float, oldest_unacked: float | None = None) -> tuple[Liveness, float]:
        """What to do now, and when to check again."""
        s = self.settings
        if oldest_unacked is not None and now - oldest_unacked >= s.timeout * s.ko_count:
            return Liveness.STALLED, now
        if self._ping_sent is not None:
            if now - self._ping_sent >= s.ping_timeout:
                return Liveness.DEAD, now
            return Liveness.OK, self._ping_sent + s.ping_timeout
        if now - self._last_heard >= s.ping_int:
            self._ping_sent = now
            return Liveness.SEND_PING, now + s.ping_timeout
        return Liveness.OK, self._last_heard + s.ping_int
