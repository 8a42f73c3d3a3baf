"""The bitmap flusher never persists "in sync" ahead of the data it vouches for."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from vigil.replication.bitmap import PAGE_BITS, Bitmap
from vigil.replication.node import Node


class Recorder:
    """The metadata area: which bitmap pages were written, with what content."""

    def __init__(self) -> None:
        self.pages: dict[int, bytes] = {}

    def write_bitmap_pages(self, pages: dict[int, bytes], sync: bool = True) -> int:
        self.pages.update(pages)
        return len(pages)

    def write_bitmap(self, bitmap: Bitmap, everything: bool = False, sync: bool = True) -> int:
        pages = {p: bitmap.page(p) for p in sorted(bitmap.dirty_pages)}
        bitmap.dirty_pages.clear()
        return self.write_bitmap_pages(pages, sync)


def test_a_bit_cleared_while_the_data_flush_runs_waits_for_the_next_flush(monkeypatch):
    bitmap = Bitmap(2 * PAGE_BITS)
    bitmap.set_range(5, 6)            # block 5 out of sync, page 0
    bitmap.set_range(PAGE_BITS, PAGE_BITS + 1)  # and one on page 1
    node = SimpleNamespace(bitmap=bitmap, md=Recorder(), _stopping=False)

    def flush() -> None:
        # a resync write of block 5 lands in the page cache during the flush,
        # after the flush began: it is not covered by it
        bitmap.clear_range(5, 6)
        node._stopping = True

    node.backing = SimpleNamespace(flush=flush)
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda seconds: real_sleep(0))
    asyncio.run(Node._metadata_flusher(node))  # type: ignore[arg-type]

    persisted = Bitmap(2 * PAGE_BITS, node.md.pages[0] + node.md.pages[1])
    assert persisted.test(5), "block 5 persisted as in sync before its data was flushed"
    assert persisted.test(PAGE_BITS)
    assert bitmap.dirty_pages == {0}  # written by the next round, after its own flush


def test_take_dirty_returns_the_pages_and_forgets_them():
    bitmap = Bitmap(3 * PAGE_BITS)
    bitmap.set_range(2 * PAGE_BITS, 2 * PAGE_BITS + 8)
    taken = bitmap.take_dirty()
    assert list(taken) == [2] and taken[2][0] == 0xFF
    assert bitmap.dirty_pages == set() and bitmap.take_dirty() == {}
