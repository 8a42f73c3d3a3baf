"""The handshake's decision as a pure function: both nodes' facts in, what to do out.

Each node runs `decide` with its own facts as `me` and the peer's (from its
PARAMS) as `peer`; the two calls see the same facts mirrored and must agree:
one source and one target, both in sync, or the link dropped. The generation
comparison (`generations.compare`) and the split-brain policies
(`split_brain.resolve`) are applied here, then DRBD's refusals: no primary is
made a sync target (rr-conflict) unless its disk is Inconsistent, no
Inconsistent disk a source, no two primaries without allow-two-primaries. The
node applies the outcome: handlers to run, a generation rollback, the reason to
log and show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vigil.replication.generations import Generations, Side, Sync, Verdict, compare
from vigil.replication.split_brain import Outcome, Policies, SbSide, SbVerdict, resolve


@dataclass(frozen=True)
class Facts:
    """What one node brings to the handshake."""

    host: str
    generations: Generations
    primary: bool = False
    crashed_primary: bool = False
    #: blocks marked in its bitmap
    dirty_blocks: int = 0
    inconsistent: bool = False
    #: when it became primary in its current generation (0: never)
    primary_since: float = 0.0
    #: `connect --discard-my-data` was asked on it
    discard_my_data: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Facts:
        """The peer's facts from its PARAMS (validated by `messages.params`)."""
        return cls(host=str(params.get("host")),
                   generations=Generations.from_list(params["generations"]),
                   primary=bool(params["primary"]),
                   crashed_primary=bool(params["crashed_primary"]),
                   dirty_blocks=int(params["dirty"]),
                   inconsistent=bool(params.get("inconsistent")),
                   primary_since=float(params.get("primary_since", 0)),
                   discard_my_data=bool(params.get("discard_my_data")))

    def side(self) -> Side:
        return Side(self.generations, self.crashed_primary, self.primary, self.dirty_blocks,
                    self.inconsistent)

    def sb_side(self) -> SbSide:
        return SbSide(self.host, self.primary, self.dirty_blocks, self.primary_since,
                      self.discard_my_data)


@dataclass(frozen=True)
class Rules:
    policies: Policies = field(default_factory=Policies)
    #: breaks symmetric cases; the two nodes hold opposite values
    i_win_ties: bool = False
    allow_two_primaries: bool = False


@dataclass(frozen=True)
class HandshakeOutcome:
    #: what to do; None: drop the link
    sync: Sync | None
    reason: str
    verdict: Verdict
    #: split-brain resolution, when there was one
    split_brain: SbVerdict | None = None
    #: handlers to run on this node, in order
    handlers: tuple[str, ...] = ()
    #: roll this node's generations back to this ancestor (it discards its changes)
    rollback_to: int | None = None
    #: what to keep as the node's split-brain note ("" clears it; None leaves it)
    split_brain_note: str | None = None
    #: do not try again by itself (an admin must act)
    stop_connecting: bool = False


def decide(me: Facts, peer: Facts, rules: Rules) -> HandshakeOutcome:
    verdict = compare(me.side(), peer.side(), i_win_ties=rules.i_win_ties)
    sync = verdict.sync
    if sync is Sync.SPLIT_BRAIN:
        # `--discard-my-data` counts here only, as in DRBD: without a split brain the
        # generations decide (it never makes an Inconsistent disk the source)
        return _split_brain(me, peer, rules, verdict)
    if sync is Sync.INCONSISTENT_SOURCE:
        return HandshakeOutcome(None, verdict.reason, verdict, stop_connecting=True)
    if sync in (Sync.SPLIT_BRAIN_UNRELATED, Sync.UNRELATED):
        return HandshakeOutcome(None, verdict.reason, verdict, handlers=("split-brain",),
                                split_brain_note=verdict.reason)
    # a primary whose disk is Inconsistent (attached under it) is the sync target: it
    # reads what it lacks from the peer meanwhile, as DRBD's rr-conflict check allows
    if sync.is_target and me.primary and not me.inconsistent:
        return HandshakeOutcome(
            None, "this primary would be sync target (rr-conflict): disconnecting", verdict)
    if sync.is_source and peer.primary and not peer.inconsistent:
        return HandshakeOutcome(
            None, "the peer primary would be sync target (rr-conflict)", verdict)
    if me.primary and peer.primary and not rules.allow_two_primaries:
        return HandshakeOutcome(None, "both primary and allow-two-primaries is off", verdict)
    return HandshakeOutcome(sync, verdict.reason, verdict, split_brain_note="")


def _split_brain(me: Facts, peer: Facts, rules: Rules, verdict: Verdict) -> HandshakeOutcome:
    sb = resolve(rules.policies, me.sb_side(), peer.sb_side(), i_win_ties=rules.i_win_ties)
    handlers = ["initial-split-brain"]
    if sb.call_pri_lost:
        handlers.append("pri-lost-after-sb")
    note = sb.reason
    reason = f"split brain: {sb.reason}"

    def refused(why: str, handler: bool = True) -> HandshakeOutcome:
        return HandshakeOutcome(None, why, verdict, sb,
                                tuple(handlers + (["split-brain"] if handler else [])),
                                split_brain_note=note)

    if sb.outcome is Outcome.DISCONNECT:
        return refused(reason)
    source = peer if sb.outcome is Outcome.DISCARD_MINE else me
    if source.inconsistent:  # DRBD checks this after the policies too
        who = "this node" if source is me else "the peer"
        return HandshakeOutcome(None, f"split brain: {sb.reason}, but {who} would be the sync "
                                "source and its disk is Inconsistent: refused", verdict, sb,
                                (*handlers, "split-brain"), split_brain_note=note,
                                stop_connecting=True)
    if sb.outcome is Outcome.DISCARD_MINE:
        if me.primary:
            return refused("split brain: this primary would have to discard its data "
                           "(rr-conflict): disconnecting")
        ancestor = me.generations.bitmap or peer.generations.bitmap
        return HandshakeOutcome(Sync.TARGET_BITMAP, reason, verdict, sb, tuple(handlers),
                                rollback_to=ancestor or None, split_brain_note=note)
    if peer.primary:
        return refused("split brain: the peer is primary and would have to discard its "
                       "data (rr-conflict): disconnecting", handler=False)
    return HandshakeOutcome(Sync.SOURCE_BITMAP, reason, verdict, sb, tuple(handlers),
                            split_brain_note=note)
