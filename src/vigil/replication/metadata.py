"""The metadata superblock: generations, flags, sizes (pure encode/decode).

One 4 KiB block, checksummed. The flags are what survives a crash: whether the
data is consistent (not a half-done sync target), whether it is known to be
outdated, and whether the node was primary (set on promotion, cleared on a
clean demotion: found set at attach, it means the node crashed as primary and
its activity log must be resynced), and whether it was connected (found clear
next to "primary", the node went down as a degraded primary: `wfc`).
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, replace

from vigil.replication.generations import Generations
from vigil.replication.geometry import DEFAULT_AL_EXTENTS, SUPERBLOCK_SIZE

MD_MAGIC = b"VIGILMD\x01"
MD_VERSION = 1
_FORMAT = struct.Struct("<8sIIQQQQQIQdBQ")
_CRC = struct.Struct("<I")


class MdFlag(enum.IntFlag):
    CONSISTENT = 0x01
    OUTDATED = 0x02
    PRIMARY = 0x04
    PEER_OUTDATED = 0x08
    #: A resync into this node was in progress (its bitmap says what is missing).
    SYNC_TARGET = 0x10
    #: Connected to the peer: found without it at attach next to PRIMARY, the node was
    #: a degraded primary when it went down (the boot wait uses degr-wfc-timeout).
    CONNECTED = 0x20


NO_GENERATIONS = Generations()
NO_FLAGS = MdFlag(0)


class MetadataError(Exception):
    """No valid metadata where it should be (not created, or corrupt)."""


@dataclass(frozen=True)
class Superblock:
    data_size: int
    generations: Generations = NO_GENERATIONS
    flags: MdFlag = NO_FLAGS
    al_extents: int = DEFAULT_AL_EXTENTS
    volume_id: int = 0
    primary_since: float = 0.0
    external_index: int = 0xFF  # 0xFF: internal metadata

    @property
    def consistent(self) -> bool:
        return bool(self.flags & MdFlag.CONSISTENT)

    @property
    def outdated(self) -> bool:
        return bool(self.flags & MdFlag.OUTDATED)

    @property
    def crashed_primary(self) -> bool:
        return bool(self.flags & MdFlag.PRIMARY)

    def with_flag(self, flag: MdFlag, on: bool = True) -> Superblock:
        return replace(self, flags=(self.flags | flag) if on else (self.flags & ~flag))

    def encode(self) -> bytes:
        g = self.generations
        body = _FORMAT.pack(
            MD_MAGIC, MD_VERSION, int(self.flags), self.data_size, g.current, g.bitmap,
            g.history[0], g.history[1], self.al_extents, self.volume_id, self.primary_since,
            min(self.external_index, 0xFF), 0,
        )
        return (body + _CRC.pack(zlib.crc32(body))).ljust(SUPERBLOCK_SIZE, b"\0")

    @classmethod
    def decode(cls, block: bytes) -> Superblock:
        if len(block) < _FORMAT.size + _CRC.size:
            raise MetadataError("metadata block is truncated")
        fields = _FORMAT.unpack_from(block)
        if fields[0] != MD_MAGIC:
            raise MetadataError("no vigil metadata found (run 'vigil volume create-md')")
        (crc,) = _CRC.unpack_from(block, _FORMAT.size)
        if crc != zlib.crc32(block[: _FORMAT.size]):
            raise MetadataError("metadata superblock checksum mismatch")
        if fields[1] != MD_VERSION:
            raise MetadataError(f"metadata version {fields[1]} is not supported")
        (_, _, flags, size, cur, bm, h0, h1, al, vid, since, index, _) = fields
        return cls(size, Generations(cur, bm, (h0, h1)), MdFlag(flags), al, vid, since, index)
