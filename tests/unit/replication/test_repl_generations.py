"""The handshake's sync-direction decision over every combination of generation identifiers."""

from __future__ import annotations

import itertools

import pytest

from vigil.replication.generations import Generations, Side, Sync, compare

# A small universe of identifiers: 0 (empty) and three generations.
VALUES = (0, 0xA, 0xB, 0xC)


def all_generations():
    for current, bitmap, h0, h1 in itertools.product(VALUES, repeat=4):
        yield Generations(current, bitmap, (h0, h1))


def test_every_pair_of_tuples_gets_a_mirrored_verdict():
    """For all 256 x 256 pairs (and crash flags), the two nodes agree on who does what."""
    tuples = list(all_generations())
    checked = 0
    for a, b in itertools.product(tuples, repeat=2):
        for crash_a, crash_b in ((False, False), (True, False), (True, True)):
            me = Side(a, crashed_primary=crash_a)
            peer = Side(b, crashed_primary=crash_b)
            mine = compare(me, peer, i_win_ties=True)
            theirs = compare(peer, me, i_win_ties=False)
            assert theirs.sync == mine.sync.mirrored(), (a, b, crash_a, crash_b, mine, theirs)
            checked += 1
    assert checked == 256 * 256 * 3


@pytest.mark.parametrize(
    ("mine", "theirs", "expected", "rule"),
    [
        (Generations(), Generations(), Sync.BOTH_FRESH, 10),
        (Generations(), Generations(0xA), Sync.TARGET_FULL, 20),
        (Generations(0xA), Generations(), Sync.SOURCE_FULL, 30),
        (Generations(0xA), Generations(0xA), Sync.NONE, 40),
        # The peer promoted while apart (or lost us as primary): its bitmap counts from mine.
        (Generations(0xA), Generations(0xB, 0xA), Sync.TARGET_BITMAP, 50),
        (Generations(0xA), Generations(0xB, 0, (0xA, 0)), Sync.TARGET_FULL, 60),
        (Generations(0xB, 0xA), Generations(0xA), Sync.SOURCE_BITMAP, 70),
        (Generations(0xB, 0, (0xC, 0xA)), Generations(0xA), Sync.SOURCE_FULL, 80),
        # Both made a new generation from the same one: split brain.
        (Generations(0xB, 0xA), Generations(0xC, 0xA), Sync.SPLIT_BRAIN, 90),
        (Generations(0xB, 0xC), Generations(0xA, 0, (0xC, 0)), Sync.SPLIT_BRAIN_UNRELATED, 100),
        (Generations(0xB), Generations(0xC), Sync.UNRELATED, 1000),
    ],
)
def test_rules(mine, theirs, expected, rule):
    verdict = compare(Side(mine), Side(theirs), i_win_ties=True)
    assert (verdict.sync, verdict.rule) == (expected, rule)


def test_crashed_primary_is_source_of_its_activity_log():
    same = Generations(0xA)
    assert compare(Side(same, crashed_primary=True), Side(same), True).sync is Sync.SOURCE_BITMAP
    assert compare(Side(same), Side(same, crashed_primary=True), True).sync is Sync.TARGET_BITMAP


def test_marked_blocks_with_equal_generations_flow_from_the_primary():
    same = Generations(0xA)
    verdict = compare(Side(same, dirty_blocks=3), Side(same, primary=True), i_win_ties=True)
    assert verdict.sync is Sync.TARGET_BITMAP


def test_generation_lifecycle_failover_then_return():
    """Primary A crashes, B promotes, A returns: B is source of a bitmap resync."""
    start = Generations(0xA)
    b = start.new_current(0xB)  # B promoted while disconnected
    assert b == Generations(0xB, 0xA)
    assert compare(Side(start, crashed_primary=True), Side(b), True).sync is Sync.TARGET_BITMAP
    done = b.after_resync_as_source()
    assert done == Generations(0xB, 0, (0xA, 0))
    # A third disconnect-promote keeps the oldest bitmap generation.
    assert b.new_current(0xC) == Generations(0xC, 0xA)
    with pytest.raises(ValueError):
        start.new_current(0)


def test_split_brain_victim_rolls_back_to_the_common_ancestor():
    victim = Generations(0xC, 0xA)
    rolled = victim.rolled_back_to(0xA)
    survivor = Generations(0xB, 0xA)
    assert compare(Side(rolled), Side(survivor), True).sync is Sync.TARGET_BITMAP


@pytest.mark.parametrize(("mine", "theirs", "me_inconsistent"), [
    (Generations(0xA), Generations(), True),                # rule 30: I would be the source
    (Generations(0xB, 0xA), Generations(0xA), True),        # rule 70
    (Generations(0xA), Generations(0xB, 0xA), False),       # rule 50: the peer would be
])
def test_an_inconsistent_disk_never_becomes_the_sync_source(mine, theirs, me_inconsistent):
    me, peer = Side(mine, inconsistent=me_inconsistent), Side(theirs,
                                                               inconsistent=not me_inconsistent)
    for verdict in (compare(me, peer, True), compare(peer, me, False)):
        assert verdict.sync is Sync.INCONSISTENT_SOURCE and "Inconsistent" in verdict.reason
    # consistent, the same generations resync as before
    assert compare(Side(mine), Side(theirs), True).sync.is_source == me_inconsistent
