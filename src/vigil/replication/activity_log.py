"""The activity log: which 4 MiB extents may have writes in flight (pure).

A primary records an extent on disk before it writes into it, and forgets it
only after the extent has been quiet and its bitmap page is on disk. After a
crash of the primary, every extent in the log is marked out of sync, so the
blocks that were in flight (on one disk but perhaps not the other) are
resynced, and nothing else. `begin` tells the caller when the on-disk log must
be rewritten before the write may proceed; in steady state (the working set
fits) it never has to be.
"""

from __future__ import annotations

import struct
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from vigil.replication.geometry import AL_SLOT_SIZE

AL_MAGIC = b"VGAL"
_HEADER = struct.Struct("<4sQI")  # magic, transaction number, extent count
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class AlChange:
    """A transaction the caller must make durable before the write goes to disk."""

    added: tuple[int, ...]
    evicted: tuple[int, ...]


class ActivityLog:
    def __init__(self, capacity: int, extents: Iterable[int] = ()):
        if capacity < 1:
            raise ValueError("the activity log needs room for at least one extent")
        self.capacity = capacity
        #: extent -> writes in flight in it; ordered from least to most recently used.
        self._hot: OrderedDict[int, int] = OrderedDict((e, 0) for e in extents)
        self.transactions = 0

    def __contains__(self, extent: int) -> bool:
        return extent in self._hot

    def __len__(self) -> int:
        return len(self._hot)

    def extents(self) -> list[int]:
        return list(self._hot)

    def begin(self, extents: Iterable[int]) -> AlChange | None:
        """A write into `extents` starts. Returns the log change it needs, if any.

        Extents with writes in flight are never evicted; if every extent is busy
        the log grows past its capacity for a moment rather than block (it
        shrinks back at the next transaction).
        """
        added = []
        for extent in extents:
            if extent in self._hot:
                self._hot[extent] += 1
                self._hot.move_to_end(extent)
            else:
                self._hot[extent] = 1
                added.append(extent)
        if not added:
            return None
        evicted = []
        for extent, busy in list(self._hot.items()):
            if len(self._hot) <= self.capacity:
                break
            if busy == 0:
                del self._hot[extent]
                evicted.append(extent)
        self.transactions += 1
        return AlChange(tuple(added), tuple(evicted))

    def end(self, extents: Iterable[int]) -> None:
        """The write is on disk (locally and, as the protocol requires, on the peer)."""
        for extent in extents:
            busy = self._hot.get(extent)
            if busy:
                self._hot[extent] = busy - 1

    def busy(self) -> int:
        return sum(1 for n in self._hot.values() if n)

    def clear(self) -> AlChange | None:
        """Forget every idle extent (clean demotion or shutdown)."""
        evicted = tuple(e for e, n in self._hot.items() if n == 0)
        for extent in evicted:
            del self._hot[extent]
        if not evicted:
            return None
        self.transactions += 1
        return AlChange((), evicted)


def encode_transaction(number: int, extents: list[int]) -> bytes:
    """One on-disk transaction: the whole set of hot extents, checksummed."""
    body = _HEADER.pack(AL_MAGIC, number, len(extents)) + struct.pack(
        f"<{len(extents)}I", *extents
    )
    record = body + _CRC.pack(zlib.crc32(body))
    if len(record) > AL_SLOT_SIZE:
        raise ValueError(f"activity log of {len(extents)} extents does not fit a slot")
    return record.ljust(AL_SLOT_SIZE, b"\0")


def decode_transaction(slot: bytes) -> tuple[int, list[int]] | None:
    """(transaction number, extents), or None for an empty or torn slot."""
    if len(slot) < _HEADER.size + _CRC.size:
        return None
    magic, number, count = _HEADER.unpack_from(slot)
    end = _HEADER.size + 4 * count
    if magic != AL_MAGIC or end + _CRC.size > len(slot):
        return None
    (crc,) = _CRC.unpack_from(slot, end)
    if crc != zlib.crc32(slot[:end]):
        return None
    return number, list(struct.unpack_from(f"<{count}I", slot, _HEADER.size))


def latest_transaction(slots: Iterable[bytes]) -> tuple[int, list[int]]:
    """The newest valid transaction among the slots ((0, []) if none)."""
    valid = [t for t in (decode_transaction(s) for s in slots) if t is not None]
    return max(valid, default=(0, []))
