"""The dirty-region bitmap: one bit per 4 KiB block that may differ from the peer (pure).

Kept in memory and written to the metadata area page by page (a page is 4 KiB
of bitmap, covering 128 MiB of data); `dirty_pages` says which pages changed
since they were last persisted. The count of set bits is maintained as bits
change, so `status` can show "out of sync" without a scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from vigil.replication.geometry import BLOCK_SIZE

PAGE_BYTES = 4096
PAGE_BITS = PAGE_BYTES * 8
_NONZERO = re.compile(rb"[^\x00]")
_ZERO = re.compile(rb"\x00")


class Bitmap:
    def __init__(self, blocks: int, data: bytes | None = None):
        self.blocks = blocks
        size = (blocks + 7) // 8
        self._bits = bytearray(size)
        if data is not None:
            self._bits[:] = data[:size].ljust(size, b"\0")
            self._clear_tail()
        self._count = _popcount(self._bits)
        self.dirty_pages: set[int] = set()

    # -- queries -----------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Blocks marked out of sync."""
        return self._count

    @property
    def bytes_marked(self) -> int:
        return self._count * BLOCK_SIZE

    def test(self, block: int) -> bool:
        return bool(self._bits[block >> 3] & (1 << (block & 7)))

    def any_in(self, start: int, stop: int) -> bool:
        return self._count_range(start, stop) > 0

    def next_set(self, start: int) -> int | None:
        """The first marked block at or after `start`, or None."""
        if start >= self.blocks:
            return None
        byte = start >> 3
        value = self._bits[byte] & (0xFF << (start & 7)) & 0xFF
        if value:
            return (byte << 3) + _lowest_bit(value)
        found = _NONZERO.search(self._bits, byte + 1)
        if found is None:
            return None
        index = found.start()
        return (index << 3) + _lowest_bit(self._bits[index])

    def runs(self, start: int = 0, max_blocks: int = 1 << 30) -> Iterator[tuple[int, int]]:
        """(first block, count) of consecutive marked blocks, at most `max_blocks` each."""
        block = self.next_set(start)
        while block is not None:
            end = block
            limit = min(self.blocks, block + max_blocks)
            while end < limit and self.test(end):
                if end & 7 == 0 and end + 8 <= limit and self._bits[end >> 3] == 0xFF:
                    end += 8
                else:
                    end += 1
            yield block, end - block
            block = self.next_set(end)

    # -- changes ---------------------------------------------------------------------------
    def set_range(self, start: int, stop: int) -> int:
        """Mark blocks [start, stop); returns how many were newly marked."""
        return self._change(start, stop, True)

    def clear_range(self, start: int, stop: int) -> int:
        """Unmark blocks [start, stop); returns how many were marked before."""
        return self._change(start, stop, False)

    def set_all(self) -> None:
        self.set_range(0, self.blocks)

    def clear_all(self) -> None:
        self.clear_range(0, self.blocks)

    def merge(self, other: bytes) -> int:
        """OR another bitmap (same size) into this one; returns newly marked blocks."""
        if len(other) != len(self._bits):
            raise ValueError(f"bitmap sizes differ: {len(other)} != {len(self._bits)} bytes")
        before = self._count
        merged = int.from_bytes(self._bits, "little") | int.from_bytes(other, "little")
        new = merged.to_bytes(len(self._bits), "little")
        for page in range(0, len(self._bits), PAGE_BYTES):
            if new[page:page + PAGE_BYTES] != self._bits[page:page + PAGE_BYTES]:
                self.dirty_pages.add(page // PAGE_BYTES)
        self._bits[:] = new
        self._clear_tail()
        self._count = _popcount(self._bits)
        return self._count - before

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def take_dirty(self) -> dict[int, bytes]:
        """The changed pages as they are now, and forget that they changed.

        For writing after a data flush: a bit cleared while the flush runs (a
        resync write landing in the page cache) marks its page dirty again and
        waits for the next flush, so "in sync" is never persisted ahead of the
        data it vouches for.
        """
        taken = {index: self.page(index) for index in sorted(self.dirty_pages)}
        self.dirty_pages.clear()
        return taken

    def page(self, index: int) -> bytes:
        chunk = bytes(self._bits[index * PAGE_BYTES:(index + 1) * PAGE_BYTES])
        return chunk.ljust(PAGE_BYTES, b"\0")

    @property
    def pages(self) -> int:
        return (len(self._bits) + PAGE_BYTES - 1) // PAGE_BYTES

    # -- internals ---------------------------------------------------------------------------
    def _count_range(self, start: int, stop: int) -> int:
        start, stop = max(0, start), min(self.blocks, stop)
        if stop <= start:
            return 0
        first, last = start >> 3, (stop - 1) >> 3
        value = int.from_bytes(self._bits[first:last + 1], "little")
        value >>= start & 7
        return (value & ((1 << (stop - start)) - 1)).bit_count()

    def _change(self, start: int, stop: int, on: bool) -> int:
        start, stop = max(0, start), min(self.blocks, stop)
        if stop <= start:
            return 0
        first, last = start >> 3, (stop - 1) >> 3
        mask = ((1 << (stop - start)) - 1) << (start & 7)
        if first == last:  # within one byte (a lone 4 KiB block): no big-int round trip
            span = self._bits[first]
            before = (span & mask).bit_count()
            self._bits[first] = span | mask if on else span & ~mask
        else:
            span = int.from_bytes(self._bits[first:last + 1], "little")
            before = (span & mask).bit_count()
            span = span | mask if on else span & ~mask
            self._bits[first:last + 1] = span.to_bytes(last - first + 1, "little")
        changed = (stop - start - before) if on else before
        self._count += changed if on else -changed
        if changed:
            for page in range(first // PAGE_BYTES, last // PAGE_BYTES + 1):
                self.dirty_pages.add(page)
        return changed

    def _clear_tail(self) -> None:
        extra = len(self._bits) * 8 - self.blocks
        if extra and self._bits:
            self._bits[-1] &= 0xFF >> extra


def _popcount(data: bytes | bytearray) -> int:
    return int.from_bytes(data, "little").bit_count()


def _lowest_bit(value: int) -> int:
    return (value & -value).bit_length() - 1


def block_range(offset: int, length: int) -> tuple[int, int]:
    """The blocks [start, stop) a byte range touches."""
    if length <= 0:
        return offset // BLOCK_SIZE, offset // BLOCK_SIZE
    return offset // BLOCK_SIZE, (offset + length - 1) // BLOCK_SIZE + 1
