"""Growing a volume, as `drbdadm resize` does (pure).

A node's *capacity* is the data area its backing disk allows (with internal
metadata, what is left before the metadata at the end); its *size* is what
the volume exports, the same on both nodes. `resize` asks both nodes to grow
to the smaller capacity; the new blocks are marked out of sync and resynced
from the primary. Neither node ever shrinks a volume.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.replication.geometry import BLOCK_SIZE, SUPERBLOCK_SIZE, Layout, align_down


@dataclass(frozen=True)
class Sizes:
    """What a node says of its disk at the handshake."""

    size: int
    capacity: int
    #: this node runs `resize`: grow to the smaller capacity
    grow: bool = False


@dataclass(frozen=True)
class Agreement:
    size: int
    refusal: str = ""


def negotiate(mine: Sizes, theirs: Sizes) -> Agreement:
    """The size both nodes use after a handshake; the same answer on either side.

    Without a resize request the larger current size wins if both disks hold
    it (a node grown alone with --assume-peer-has-space brings its peer up to
    it); with one, both grow to the smaller capacity.
    """
    room = min(mine.capacity, theirs.capacity)
    largest = max(mine.size, theirs.size)
    target = max(room, largest) if mine.grow or theirs.grow else largest
    target = align_down(target, BLOCK_SIZE)
    if room < target:
        small = "this node's" if mine.capacity < theirs.capacity else "the peer's"
        return Agreement(max(mine.size, theirs.size), (
            f"the volume is {largest} bytes on one node but {small} backing disk holds only "
            f"{room}: refusing to connect (grow that backing disk and run resize)"))
    return Agreement(target)


def local_growth(size: int, capacity: int, connected: bool,
                 assume_peer_has_space: bool) -> Agreement:
    """`resize` on a node without a connected peer: its own capacity, if the user vouches
    for the peer's disk (DRBD's --assume-peer-has-space)."""
    if connected:
        raise ValueError("a connected node grows through the handshake")
    if not assume_peer_has_space:
        return Agreement(size, "not connected: the peer's disk size is unknown (connect "
                               "first, or resize --assume-peer-has-space)")
    return Agreement(max(size, align_down(capacity, BLOCK_SIZE)))


def relocation_refusal(old: Layout, new: Layout) -> str:
    """Why internal metadata cannot move from `old` to `new` ('' when it can).

    The move writes the new copy completely before the old one is abandoned,
    so the two must not overlap: the disk must grow by at least the size of
    the new metadata.
    """
    old_end = old.superblock_offset + SUPERBLOCK_SIZE
    if new.bitmap_offset < old_end:
        grown = new.superblock_offset + SUPERBLOCK_SIZE - old_end
        return (f"the backing disk grew by {grown} bytes, too little to move the metadata "
                f"past its old place: grow it by at least {new.metadata_size} bytes")
    return ""
