"""Bitmap and activity-log accounting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vigil.replication.activity_log import (
    ActivityLog,
    decode_transaction,
    encode_transaction,
    latest_transaction,
)
from vigil.replication.bitmap import Bitmap, block_range
from vigil.replication.geometry import BLOCK_SIZE, extents_of


def test_set_clear_count_and_pages():
    bm = Bitmap(100_000)
    assert bm.set_range(10, 20) == 10
    assert bm.set_range(15, 25) == 5  # only the new ones count
    assert bm.count == 15
    assert bm.dirty_pages == {0}
    bm.dirty_pages.clear()
    assert bm.set_range(40_000, 40_001) == 1
    assert bm.dirty_pages == {1}  # 32768 bits per page
    assert bm.clear_range(0, 100_000) == 16
    assert bm.count == 0
    assert bm.next_set(0) is None


def test_runs_and_next_set():
    bm = Bitmap(1000)
    for start, stop in ((3, 5), (8, 9), (64, 200), (999, 1000)):
        bm.set_range(start, stop)
    assert list(bm.runs()) == [(3, 2), (8, 1), (64, 136), (999, 1)]
    assert list(bm.runs(max_blocks=64))[2:4] == [(64, 64), (128, 64)]
    assert bm.next_set(9) == 64
    assert bm.next_set(201) == 999


def test_merge_is_or_and_round_trip():
    a, b = Bitmap(300), Bitmap(300)
    a.set_range(0, 10)
    b.set_range(5, 20)
    assert a.merge(b.to_bytes()) == 10
    assert a.count == 20
    assert Bitmap(300, a.to_bytes()).count == 20


def test_block_range_of_partial_writes():
    assert block_range(0, 4096) == (0, 1)
    assert block_range(4095, 2) == (0, 2)
    assert block_range(BLOCK_SIZE * 3, 1 << 20) == (3, 3 + 256)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2000), st.integers(0, 300)),
                max_size=40))
def test_count_matches_a_model(operations):
    bm = Bitmap(2048)
    model: set[int] = set()
    for on, start, length in operations:
        stop = min(2048, start + length)
        if on:
            bm.set_range(start, stop)
            model.update(range(start, stop))
        else:
            bm.clear_range(start, stop)
            model.difference_update(range(start, stop))
        assert bm.count == len(model)
    assert [b for b in range(2048) if bm.test(b)] == sorted(model)
    assert sum(n for _, n in bm.runs()) == len(model)


def test_activity_log_needs_a_transaction_only_for_new_extents():
    al = ActivityLog(capacity=3)
    change = al.begin(extents_of(0, 4096))
    assert change is not None and change.added == (0,) and change.evicted == ()
    al.end([0])
    assert al.begin([0]) is None  # hot already: no metadata write
    al.end([0])
    for extent in (1, 2):
        al.begin([extent])
        al.end([extent])
    assert al.begin([0]) is None  # 0 is the most recently used again
    al.end([0])
    change = al.begin([3])  # over capacity: the least recently used idle extent goes
    assert change is not None and change.evicted == (1,)
    assert sorted(al.extents()) == [0, 2, 3]
    assert al.transactions == 4


def test_busy_extents_are_never_evicted():
    al = ActivityLog(capacity=1)
    al.begin([0])  # in flight
    change = al.begin([1])
    assert change is not None and change.evicted == ()
    assert sorted(al.extents()) == [0, 1]
    al.end([0])
    al.end([1])
    assert al.begin([2]).evicted == (0, 1)


def test_transaction_encoding_and_torn_slots():
    slot = encode_transaction(7, [5, 9, 12])
    assert decode_transaction(slot) == (7, [5, 9, 12])
    torn = bytearray(slot)
    torn[20] ^= 0xFF
    assert decode_transaction(bytes(torn)) is None
    older = encode_transaction(6, [1])
    assert latest_transaction([older, bytes(torn)]) == (6, [1])
    assert latest_transaction([b"\0" * 64]) == (0, [])
