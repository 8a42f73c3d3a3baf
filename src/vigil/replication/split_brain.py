"""Automatic split-brain recovery: DRBD's after-sb-0pri/1pri/2pri policies (pure).

Called when the handshake found split brain with a common ancestor. Each node
decides for itself from the same facts, with opposite tie-break flags, so both
reach the same verdict. A `--discard-my-data` connect (manual recovery) wins
over every policy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

POLICIES_0PRI = ("disconnect", "discard-younger-primary", "discard-older-primary",
                 "discard-zero-changes", "discard-least-changes", "discard-local",
                 "discard-remote")
POLICIES_1PRI = ("disconnect", "consensus", "discard-secondary", "call-pri-lost-after-sb",
                 "violently-as0p")
POLICIES_2PRI = ("disconnect", "call-pri-lost-after-sb", "violently-as0p")


class Outcome(enum.Enum):
    DISCARD_MINE = "discard this node's changes (it becomes sync target)"
    DISCARD_PEER = "discard the peer's changes (this node becomes sync source)"
    DISCONNECT = "disconnect: resolve by hand"


@dataclass(frozen=True)
class SbSide:
    name: str
    primary: bool
    #: Blocks changed since the split (the bitmap's weight).
    changes: int
    #: When this side became primary in its current generation (0: it never was).
    primary_since: float = 0.0
    discard_my_data: bool = False


@dataclass(frozen=True)
class Policies:
    after_sb_0pri: str = "disconnect"
    after_sb_1pri: str = "disconnect"
    after_sb_2pri: str = "disconnect"


@dataclass(frozen=True)
class SbVerdict:
    outcome: Outcome
    reason: str
    #: Run the pri-lost-after-sb handler on this node (it was primary and lost).
    call_pri_lost: bool = False


def _flip(outcome: Outcome) -> Outcome:
    if outcome is Outcome.DISCARD_MINE:
        return Outcome.DISCARD_PEER
    if outcome is Outcome.DISCARD_PEER:
        return Outcome.DISCARD_MINE
    return outcome


def zero_primaries(policy: str, me: SbSide, peer: SbSide, i_win_ties: bool) -> SbVerdict:
    """after-sb-0pri (also the base rule that 1pri/2pri policies defer to)."""
    if policy == "disconnect":
        return SbVerdict(Outcome.DISCONNECT, "after-sb-0pri disconnect")
    if policy in ("discard-younger-primary", "discard-older-primary"):
        if me.primary_since == peer.primary_since:
            if me.primary_since == 0:
                return zero_primaries("discard-least-changes", me, peer, i_win_ties)
            outcome = Outcome.DISCARD_PEER if i_win_ties else Outcome.DISCARD_MINE
            return SbVerdict(outcome, f"{policy}: same promotion time, node order decides")
        # The later promotion is the younger primary (0: not promoted since the split).
        mine_younger = me.primary_since > peer.primary_since
        younger = Outcome.DISCARD_MINE if mine_younger else Outcome.DISCARD_PEER
        outcome = younger if policy == "discard-younger-primary" else _flip(younger)
        who = me.name if outcome is Outcome.DISCARD_MINE else peer.name
        return SbVerdict(outcome, f"{policy}: discarding {who}")
    if policy == "discard-zero-changes":
        if me.changes == 0 and peer.changes == 0:
            outcome = Outcome.DISCARD_MINE if not i_win_ties else Outcome.DISCARD_PEER
            return SbVerdict(outcome, "discard-zero-changes: neither changed anything")
        if me.changes == 0:
            return SbVerdict(Outcome.DISCARD_MINE, "discard-zero-changes: this node wrote nothing")
        if peer.changes == 0:
            return SbVerdict(Outcome.DISCARD_PEER, "discard-zero-changes: the peer wrote nothing")
        return SbVerdict(Outcome.DISCONNECT,
                         f"discard-zero-changes: both wrote ({me.changes} and {peer.changes} "
                         "blocks)")
    if policy == "discard-least-changes":
        if me.changes == peer.changes:
            outcome = Outcome.DISCARD_PEER if i_win_ties else Outcome.DISCARD_MINE
            return SbVerdict(outcome, f"discard-least-changes: tie at {me.changes} blocks")
        outcome = Outcome.DISCARD_MINE if me.changes < peer.changes else Outcome.DISCARD_PEER
        return SbVerdict(outcome, f"discard-least-changes: {me.changes} vs {peer.changes} blocks")
    if policy == "discard-local":
        return SbVerdict(Outcome.DISCARD_MINE, "discard-local")
    if policy == "discard-remote":
        return SbVerdict(Outcome.DISCARD_PEER, "discard-remote")
    if policy.startswith("discard-node-"):
        victim = policy.removeprefix("discard-node-")
        if victim in (me.name, me.name.split(".")[0]):
            return SbVerdict(Outcome.DISCARD_MINE, f"{policy}: this node")
        if victim in (peer.name, peer.name.split(".")[0]):
            return SbVerdict(Outcome.DISCARD_PEER, f"{policy}: the peer")
        return SbVerdict(Outcome.DISCONNECT, f"{policy}: names neither node")
    raise ValueError(f"unknown after-sb-0pri policy {policy!r}")


def resolve(policies: Policies, me: SbSide, peer: SbSide, i_win_ties: bool) -> SbVerdict:
    """The split-brain verdict for this node."""
    if me.discard_my_data and peer.discard_my_data:
        return SbVerdict(Outcome.DISCONNECT, "both sides asked to discard their data")
    if me.discard_my_data:
        return SbVerdict(Outcome.DISCARD_MINE, "manual recovery: --discard-my-data here")
    if peer.discard_my_data:
        return SbVerdict(Outcome.DISCARD_PEER, "manual recovery: --discard-my-data on the peer")
    primaries = int(me.primary) + int(peer.primary)
    base = zero_primaries(policies.after_sb_0pri, me, peer, i_win_ties)
    if primaries == 0:
        return base
    if primaries == 1:
        policy = policies.after_sb_1pri
        discards_secondary = (
            base.outcome is Outcome.DISCARD_MINE and not me.primary
        ) or (base.outcome is Outcome.DISCARD_PEER and not peer.primary)
        if policy == "disconnect":
            return SbVerdict(Outcome.DISCONNECT, "after-sb-1pri disconnect")
        if policy == "discard-secondary":
            outcome = Outcome.DISCARD_PEER if me.primary else Outcome.DISCARD_MINE
            return SbVerdict(outcome, "after-sb-1pri discard-secondary")
        if policy == "consensus":
            if discards_secondary:
                return SbVerdict(base.outcome, f"after-sb-1pri consensus with {base.reason}")
            return SbVerdict(Outcome.DISCONNECT,
                             f"after-sb-1pri consensus: {base.reason} would not discard "
                             "the secondary")
        if policy == "call-pri-lost-after-sb":
            if base.outcome is Outcome.DISCONNECT or discards_secondary:
                return SbVerdict(base.outcome, f"after-sb-1pri call-pri-lost-after-sb: "
                                 f"{base.reason}")
            return SbVerdict(base.outcome, f"after-sb-1pri: the primary lost ({base.reason})",
                             call_pri_lost=me.primary)
        if policy == "violently-as0p":
            return SbVerdict(base.outcome, f"after-sb-1pri violently-as0p: {base.reason}")
        raise ValueError(f"unknown after-sb-1pri policy {policy!r}")
    policy = policies.after_sb_2pri
    if policy == "disconnect":
        return SbVerdict(Outcome.DISCONNECT, "after-sb-2pri disconnect")
    if policy == "call-pri-lost-after-sb":
        if base.outcome is Outcome.DISCONNECT:
            return SbVerdict(base.outcome, f"after-sb-2pri: {base.reason}")
        return SbVerdict(base.outcome, f"after-sb-2pri call-pri-lost-after-sb: {base.reason}",
                         call_pri_lost=base.outcome is Outcome.DISCARD_MINE)
    if policy == "violently-as0p":
        return SbVerdict(base.outcome, f"after-sb-2pri violently-as0p: {base.reason}")
    raise ValueError(f"unknown after-sb-2pri policy {policy!r}")
