"""What a fence-peer handler's exit code means for the disconnected primary (pure).

DRBD's reading: 3 (the peer's disk is Inconsistent), 4 (the peer is now
Outdated) and 7 (the peer was shot) make the peer's data outdated; 5 (the peer
cannot be reached) counts as the peer being gone only while this node's own
data is UpToDate; 6 (the peer is primary and refused) outdates this node
instead. Any other code means the handler failed: with `fencing
resource-and-stonith` writes then stay frozen until an operator says
`resume-io`, so that two primaries can never both write.
"""

from __future__ import annotations

from dataclasses import dataclass

#: fence-peer exit codes after which the peer's disk counts as Outdated
PEER_OUTDATED_CODES = frozenset({3, 4, 7})


@dataclass(frozen=True)
class FenceOutcome:
    #: writes may go on (a frozen device thaws)
    resolved: bool
    peer_outdated: bool = False
    outdate_self: bool = False
    why: str = ""


def fence_outcome(code: int, own_data_uptodate: bool) -> FenceOutcome:
    """The outcome of fence-peer exit `code` on a primary that lost its peer."""
    if code in PEER_OUTDATED_CODES:
        what = {3: "the peer's disk is inconsistent", 4: "the peer was outdated",
                7: "the peer was fenced (stonith)"}[code]
        return FenceOutcome(True, peer_outdated=True, why=what)
    if code == 5:
        if own_data_uptodate:
            return FenceOutcome(True, peer_outdated=True,
                                why="the peer is unreachable: assumed dead")
        return FenceOutcome(True, why="the peer is unreachable; this node's data is not "
                                      "UpToDate, so nothing is marked")
    if code == 6:
        return FenceOutcome(True, outdate_self=True,
                            why="the peer is primary: this node's data is outdated")
    return FenceOutcome(False, why=f"the fence-peer handler failed (exit {code})")


class WriteFreeze:
    """Whether writes are frozen, why, and which fence owns the freeze.

    A fence-peer handler can outlive its link loss: the peer may come back (which
    thaws writes) and be lost again (a newer fence freezes them) before the
    first handler exits. Each freeze therefore carries a token; only the fence
    that owns the current freeze may settle it, so a stale handler can neither
    thaw a newer freeze nor re-freeze writes that flow again.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._owner = 0
        self._issued = 0

    @property
    def frozen(self) -> bool:
        return self.reason is not None

    def freeze(self, why: str) -> int:
        """Freeze (or take over a freeze) for a new fence; its token settles it."""
        self._issued += 1
        self._owner = self._issued
        self.reason = why
        return self._owner

    def settle(self, token: int, outcome: FenceOutcome) -> bool:
        """Apply a fence's outcome if it still owns the freeze; True when it did."""
        if token != self._owner or not self.frozen:
            return False
        self.reason = None if outcome.resolved else outcome.why
        return True

    def thaw(self) -> bool:
        """Writes flow again whoever froze them (operator's resume-io, peer back)."""
        was = self.frozen
        self.reason = None
        self._owner = 0
        return was
