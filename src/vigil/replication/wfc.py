"""The boot-time wait for the peer: DRBD's wait-connect and its `startup` timeouts (pure).

At boot DRBD's init script brings every resource up and then blocks until each
is connected, so that the cluster manager started after it never promotes a
disk whose peer holds newer data. How long it waits depends on what the
metadata says about the node's last life:

- `outdated-wfc-timeout` if the node had marked its peer outdated (a fence-peer
  handler said so): the peer may not be promoted meanwhile, waiting is cheap;
- `degr-wfc-timeout` if the node went down as a primary that had already lost
  its peer (a degraded cluster): the peer is less likely to come back soon;
- `wfc-timeout` otherwise.

0 means forever. As drbdsetup does, the degraded wait is never longer than a
non-zero `wfc-timeout`, nor the outdated wait longer than a non-zero degraded
one. Without `wait-after-sb` the wait also ends when the link gives up
(StandAlone: a split brain or unrelated data refused the connection).
Observations and `now` go in; a verdict with its reason comes out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vigil.replication.metadata import MdFlag

#: drbdsetup's exit code when a wait ran out of time
EXIT_TIMED_OUT = 5


class WaitKind(enum.Enum):
    """Which of the startup section's timeouts applies (DRBD's UT_DEFAULT, ...)."""

    DEFAULT = "wfc-timeout"
    DEGRADED = "degr-wfc-timeout"
    PEER_OUTDATED = "outdated-wfc-timeout"


@dataclass(frozen=True)
class StartupTimeouts:
    """The `startup` section, in seconds (0: forever)."""

    wfc: float = 0.0
    degraded: float = 60.0
    outdated: float = 0.0
    wait_after_sb: bool = False

    def timeout(self, kind: WaitKind) -> float:
        """The wait for `kind`, with drbdsetup's rule that a special wait is never the longer."""
        if kind is WaitKind.DEFAULT:
            return self.wfc
        degraded = self.degraded
        if self.wfc > 0 and (degraded == 0 or degraded > self.wfc):
            degraded = self.wfc
        if kind is WaitKind.DEGRADED:
            return degraded
        outdated = self.outdated
        if degraded > 0 and (outdated == 0 or outdated > degraded):
            outdated = degraded
        return outdated


def kind_at_attach(flags: MdFlag) -> tuple[WaitKind, str]:
    """Which timeout the metadata found at attach calls for, and why."""
    if flags & MdFlag.PEER_OUTDATED:
        return WaitKind.PEER_OUTDATED, "the peer was marked outdated before this node went down"
    if flags & MdFlag.PRIMARY and not flags & MdFlag.CONNECTED:
        return WaitKind.DEGRADED, ("this node went down as a primary without its peer "
                                   "(a degraded cluster)")
    return WaitKind.DEFAULT, "this node went down with its peer connected, or as a secondary"


@dataclass(frozen=True)
class Verdict:
    done: bool
    exit_code: int
    reason: str


class ConnectWait:
    """One resource's wait: started at `started`, asked again with each observation."""

    def __init__(self, kind: WaitKind, timeouts: StartupTimeouts, started: float):
        self.kind = kind
        self.timeouts = timeouts
        self.started = started
        self.limit = timeouts.timeout(kind)

    @property
    def deadline(self) -> float | None:
        return None if self.limit <= 0 else self.started + self.limit

    def describe(self) -> str:
        """What the wait is for and how long it may last."""
        bound = "forever" if self.limit <= 0 else f"up to {self.limit:g} s"
        return f"waiting for the peer to connect, {bound} ({self.kind.value})"

    def observe(self, now: float, connection: str, reason: str = "") -> Verdict:
        waited = max(0.0, now - self.started)
        if connection == "Connected":
            return Verdict(True, 0, f"connected after {waited:.1f} s")
        if connection == "StandAlone" and not self.timeouts.wait_after_sb:
            # drbdsetup ends the wait here too, successfully: waiting longer cannot help
            why = f": {reason}" if reason else ""
            return Verdict(True, 0, f"StandAlone{why}; not waiting (wait-after-sb is off)")
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            return Verdict(True, EXIT_TIMED_OUT, f"no connection after {self.limit:g} s "
                           f"({self.kind.value}); going on without the peer")
        return Verdict(False, 0, f"{connection}, waited {waited:.1f} s")

    def next_check(self, now: float, interval: float) -> float:
        """When to look again: after `interval`, or at the deadline if that comes first."""
        deadline = self.deadline
        return now + interval if deadline is None else min(now + interval, max(now, deadline))
