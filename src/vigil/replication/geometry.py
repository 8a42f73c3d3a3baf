"""Sizes and the on-disk layout of a volume's metadata (pure arithmetic).

Like DRBD, the unit of replication bookkeeping is a 4 KiB block (one bitmap
bit) and the unit of the activity log is a 4 MiB extent. Internal metadata
sits at the end of the backing device: [data | bitmap | activity log |
superblock]; external metadata puts the same three parts at the start of a
128 MiB slot of another file or device.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_SIZE = 4096
EXTENT_SIZE = 4 << 20
BLOCKS_PER_EXTENT = EXTENT_SIZE // BLOCK_SIZE
SUPERBLOCK_SIZE = 4096
#: Room for one activity-log transaction (a list of up to 2 * 4095 extents is plenty).
AL_SLOT_SIZE = 32 * 1024
AL_SLOTS = 2
EXTERNAL_SLOT_SIZE = 128 << 20
#: What one external slot leaves for the bitmap after the activity log and superblock.
EXTERNAL_BITMAP_ROOM = EXTERNAL_SLOT_SIZE - AL_SLOTS * AL_SLOT_SIZE - SUPERBLOCK_SIZE
DEFAULT_AL_EXTENTS = 1237


def align_up(value: int, unit: int) -> int:
    return (value + unit - 1) // unit * unit


def align_down(value: int, unit: int) -> int:
    return value // unit * unit


def bitmap_bytes(data_size: int) -> int:
    """Bytes of bitmap for a data area, rounded to whole 4 KiB pages."""
    bits = align_up(data_size, BLOCK_SIZE) // BLOCK_SIZE
    return align_up((bits + 7) // 8, BLOCK_SIZE)


def extents_of(offset: int, length: int) -> range:
    """The activity-log extents a write touches."""
    if length <= 0:
        return range(0)
    return range(offset // EXTENT_SIZE, (offset + length - 1) // EXTENT_SIZE + 1)


def blocks_of(offset: int, length: int) -> range:
    """The 4 KiB blocks a request touches (partially or wholly)."""
    if length <= 0:
        return range(0)
    return range(offset // BLOCK_SIZE, (offset + length - 1) // BLOCK_SIZE + 1)


@dataclass(frozen=True)
class Layout:
    """Where each part lives, as byte offsets into the metadata device."""

    data_size: int
    bitmap_offset: int
    bitmap_size: int
    al_offset: int
    superblock_offset: int
    internal: bool

    @property
    def metadata_size(self) -> int:
        return self.bitmap_size + AL_SLOTS * AL_SLOT_SIZE + SUPERBLOCK_SIZE


def internal_layout(backing_size: int) -> Layout:
    """Metadata at the end of the backing device; the data area is what is left.

    The bitmap is sized for the whole backing device (a little more than the
    data needs), which keeps the arithmetic free of a fixed-point search.
    """
    backing_size = align_down(backing_size, BLOCK_SIZE)
    bm_size = bitmap_bytes(backing_size)
    md_size = bm_size + AL_SLOTS * AL_SLOT_SIZE + SUPERBLOCK_SIZE
    if backing_size < md_size + EXTENT_SIZE:
        raise ValueError(
            f"backing device of {backing_size} bytes is too small for a volume "
            f"(needs at least {md_size + EXTENT_SIZE})"
        )
    data_size = align_down(backing_size - md_size, BLOCK_SIZE)
    superblock = backing_size - SUPERBLOCK_SIZE
    al = superblock - AL_SLOTS * AL_SLOT_SIZE
    bitmap = al - bm_size
    return Layout(data_size, bitmap, bm_size, al, superblock, internal=True)


def external_layout(data_size: int, index: int = 0) -> Layout:
    """Metadata in slot `index` (128 MiB each) of an external file or device."""
    data_size = align_down(data_size, BLOCK_SIZE)
    base = index * EXTERNAL_SLOT_SIZE
    bm_size = bitmap_bytes(data_size)
    if bm_size > EXTERNAL_BITMAP_ROOM:
        raise ValueError("data area too large for one 128 MiB external metadata slot")
    superblock = base
    al = base + SUPERBLOCK_SIZE
    bitmap = al + AL_SLOTS * AL_SLOT_SIZE
    return Layout(data_size, bitmap, bm_size, al, superblock, internal=False)


def external_capacity(backing_size: int) -> int:
    """The largest data area one 128 MiB external metadata slot can describe."""
    most = align_down(EXTERNAL_BITMAP_ROOM, BLOCK_SIZE) * 8 * BLOCK_SIZE
    return align_down(min(backing_size, most), BLOCK_SIZE)
