"""Generation identifiers and the connect-time sync decision (pure).

Every data generation of a volume has a random 64-bit identifier (DRBD's
UUIDs). A node keeps four: `current`, `bitmap` (the generation its dirty
bitmap counts changes against) and two `history` entries. A new generation
starts when a disconnected node is promoted and when a primary loses its peer;
the old current moves to `bitmap`, so the bitmap then holds exactly what
changed since the two copies were last equal. Comparing the tuples on connect
tells which side has newer data and whether the bitmap is enough (a partial
resync) or a full sync is needed, or that both sides changed apart (split
brain). The rules and their numbers follow DRBD's `drbd_uuid_compare`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Generations:
    current: int = 0
    bitmap: int = 0
    history: tuple[int, int] = (0, 0)

    def new_current(self, fresh: int) -> Generations:
        """A new generation begins; changes since the last common one stay in the bitmap."""
        if fresh == 0:
            raise ValueError("a generation identifier is never 0")
        if self.bitmap != 0 or self.current == 0:
            return replace(self, current=fresh)
        return replace(self, current=fresh, bitmap=self.current)

    def new_current_uuid(self, fresh: int) -> Generations:
        """drbdadm new-current-uuid: the bitmap generation (if any) moves into history,
        the current one becomes the bitmap generation, `fresh` the current one (DRBD's
        `drbd_uuid_set(UI_BITMAP, 0)` then `drbd_uuid_new_current`)."""
        if fresh == 0:
            raise ValueError("a generation identifier is never 0")
        history = (self.bitmap, self.history[0]) if self.bitmap else self.history
        return Generations(fresh, self.current, history)

    def after_resync_as_source(self) -> Generations:
        """The peer has caught up: the bitmap generation becomes history."""
        if self.bitmap == 0:
            return self
        return Generations(self.current, 0, (self.bitmap, self.history[0]))

    def rolled_back_to(self, ancestor: int) -> Generations:
        """The victim of a split brain goes back to the common ancestor before resyncing."""
        history = (self.current, self.history[0]) if self.current else self.history
        return Generations(ancestor, 0, history)

    def known(self) -> set[int]:
        return {g for g in (self.current, self.bitmap, *self.history) if g}

    def to_list(self) -> list[int]:
        return [self.current, self.bitmap, *self.history]

    @classmethod
    def from_list(cls, values: list[int]) -> Generations:
        return cls(values[0], values[1], (values[2], values[3]))

    def __str__(self) -> str:
        return ":".join(f"{g:016X}" for g in self.to_list())


@dataclass(frozen=True)
class NewCurrentPlan:
    """What `new-current-uuid` may do on a node (`plan_new_current`)."""

    #: both nodes fresh and connected: both become UpToDate without a sync
    skip_initial_sync: bool = False
    #: why it is refused ("" when allowed); drbdsetup's ERR_CONNECTED (exit 10)
    refusal: str = ""


def plan_new_current(connected: bool, established: bool, mine: Generations,
                     peer: Generations | None, clear_bitmap: bool) -> NewCurrentPlan:
    """DRBD 8.4's `drbd_adm_new_c_uuid`: on a disconnected node always allowed; on a
    connected one only as "skip initial sync" (`--clear-bitmap`, this node's metadata
    just created). vigil also asks that the peer's is (what DRBD leaves to the peer)
    and that no resync or verify runs."""
    if not connected:
        return NewCurrentPlan()
    fresh_here = mine.current == 0
    fresh_there = peer is not None and peer.current == 0
    if clear_bitmap and established and fresh_here and fresh_there:
        return NewCurrentPlan(skip_initial_sync=True)
    if not clear_bitmap:
        why = "connected: disconnect first (or, on two fresh disks, use --clear-bitmap)"
    elif not fresh_here:
        why = ("connected and this node already has a data generation: --clear-bitmap "
               "skips only the initial sync of fresh metadata (disconnect first)")
    elif not fresh_there:
        why = "connected and the peer already has a data generation: disconnect first"
    else:
        why = "connected but not established (a resync or verify runs): wait or disconnect"
    return NewCurrentPlan(refusal=why)


class Sync(enum.Enum):
    """What the handshake decided, from the point of view of the node asking."""

    NONE = "no resync needed"
    BOTH_FRESH = "both sides are new: no data yet (promote one with --force)"
    SOURCE_BITMAP = "partial resync, this node is the source"
    TARGET_BITMAP = "partial resync, this node is the target"
    SOURCE_FULL = "full sync, this node is the source"
    TARGET_FULL = "full sync, this node is the target"
    SPLIT_BRAIN = "split brain: both changed since a common generation"
    SPLIT_BRAIN_UNRELATED = "split brain without a usable common generation"
    UNRELATED = "unrelated data: these two volumes never were one"
    INCONSISTENT_SOURCE = "the sync source would be an inconsistent disk: refused"

    def mirrored(self) -> Sync:
        return _MIRROR.get(self, self)

    @property
    def is_source(self) -> bool:
        return self in (Sync.SOURCE_BITMAP, Sync.SOURCE_FULL)

    @property
    def is_target(self) -> bool:
        return self in (Sync.TARGET_BITMAP, Sync.TARGET_FULL)

    @property
    def is_full(self) -> bool:
        return self in (Sync.SOURCE_FULL, Sync.TARGET_FULL)


_MIRROR = {
    Sync.SOURCE_BITMAP: Sync.TARGET_BITMAP,
    Sync.TARGET_BITMAP: Sync.SOURCE_BITMAP,
    Sync.SOURCE_FULL: Sync.TARGET_FULL,
    Sync.TARGET_FULL: Sync.SOURCE_FULL,
}


@dataclass(frozen=True)
class Side:
    """What one node brings to the handshake."""

    generations: Generations
    #: It was primary when it went down without a clean demotion: the blocks in its
    #: activity log may differ from the peer's and must be resynced from it.
    crashed_primary: bool = False
    primary: bool = False
    dirty_blocks: int = 0
    #: A resync into it was under way (or it was invalidated): it must be the target.
    inconsistent: bool = False


@dataclass(frozen=True)
class Verdict:
    sync: Sync
    rule: int
    reason: str = field(default="")


def compare(me: Side, peer: Side, i_win_ties: bool) -> Verdict:
    """The sync decision for `me`; `compare(b, a, not t)` is always its mirror.

    `i_win_ties` breaks the symmetric cases (both crashed as primary, equal data
    with bits in both bitmaps); the two nodes pass opposite values. Whatever
    the generations say, an Inconsistent disk (a resync into it unfinished, or
    invalidated) is never the source: DRBD's "I shall become SyncSource, but I
    am inconsistent" ends the handshake, on both sides.
    """
    verdict = _compare(me, peer, i_win_ties)
    source = me if verdict.sync.is_source else peer if verdict.sync.is_target else None
    if source is not None and source.inconsistent:
        who = "this node" if source is me else "the peer"
        return Verdict(Sync.INCONSISTENT_SOURCE, 110,
                       f"rule {verdict.rule} makes {who} the sync source, but its disk is "
                       "Inconsistent: refused (resync it from a consistent copy first)")
    return verdict


def _compare(me: Side, peer: Side, i_win_ties: bool) -> Verdict:
    mine, theirs = me.generations, peer.generations
    if mine.current == 0 and theirs.current == 0:
        return Verdict(Sync.BOTH_FRESH, 10, "both current generations empty")
    if mine.current == 0:
        return Verdict(Sync.TARGET_FULL, 20, "this node has no data yet")
    if theirs.current == 0:
        return Verdict(Sync.SOURCE_FULL, 30, "the peer has no data yet")
    if mine.current == theirs.current:
        if me.crashed_primary and peer.crashed_primary:
            sync = Sync.SOURCE_BITMAP if i_win_ties else Sync.TARGET_BITMAP
            return Verdict(sync, 40, "both crashed as primary: tie broken by node order")
        if me.crashed_primary:
            return Verdict(Sync.SOURCE_BITMAP, 40,
                           "this node crashed as primary: resync its activity log")
        if peer.crashed_primary:
            return Verdict(Sync.TARGET_BITMAP, 40,
                           "the peer crashed as primary: resync its activity log")
        if me.inconsistent != peer.inconsistent:
            sync = Sync.TARGET_BITMAP if me.inconsistent else Sync.SOURCE_BITMAP
            return Verdict(sync, 42, "same generation, the inconsistent side is the target")
        if me.dirty_blocks or peer.dirty_blocks:
            if me.primary != peer.primary:
                sync = Sync.SOURCE_BITMAP if me.primary else Sync.TARGET_BITMAP
                return Verdict(sync, 45, "same generation, marked blocks: the primary is source")
            sync = Sync.SOURCE_BITMAP if i_win_ties else Sync.TARGET_BITMAP
            return Verdict(sync, 45, "same generation, marked blocks: tie broken by node order")
        return Verdict(Sync.NONE, 40, "same current generation")
    # Evidence that the peer is newer (rules 50, 60) or that I am (70, 80). DRBD
    # tests them in this order; both at once only happens with corrupted
    # identifiers, and is refused so that the two nodes always agree.
    target = _target_rule(mine, theirs)
    source = _target_rule(theirs, mine)
    if target and source:
        return Verdict(Sync.SPLIT_BRAIN_UNRELATED, 100,
                       "each side's generation is older than the other's: inconsistent identifiers")
    if target == 50:
        return Verdict(Sync.TARGET_BITMAP, 50, "the peer's bitmap counts from my generation")
    if target == 60:
        return Verdict(Sync.TARGET_FULL, 60, "my generation is in the peer's history")
    if source == 50:
        return Verdict(Sync.SOURCE_BITMAP, 70, "my bitmap counts from the peer's generation")
    if source == 60:
        return Verdict(Sync.SOURCE_FULL, 80, "the peer's generation is in my history")
    if mine.bitmap and mine.bitmap == theirs.bitmap:
        return Verdict(Sync.SPLIT_BRAIN, 90, "both changed since the same generation")
    mine_old = {g for g in (mine.bitmap, *mine.history) if g}
    theirs_old = {g for g in (theirs.bitmap, *theirs.history) if g}
    if mine_old & theirs_old:
        return Verdict(Sync.SPLIT_BRAIN_UNRELATED, 100,
                       "a common ancestor in history only: bitmaps unusable")
    return Verdict(Sync.UNRELATED, 1000, "no generation in common")


def _target_rule(mine: Generations, theirs: Generations) -> int:
    """50 if the peer's bitmap starts at my generation, 60 if it is in its history."""
    if theirs.bitmap and theirs.bitmap == mine.current:
        return 50
    if mine.current in theirs.history:
        return 60
    return 0
