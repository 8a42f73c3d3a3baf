"""Both primary while partitioned: split brain is detected, each policy does what it says."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

FIVE = [10, 11, 12, 500, 501]  # blocks server5 writes while apart
SIX = [12, 13, 700, 701, 702, 703, 900, 901, 902, 903]  # server6's (one overlaps)


def split(pair, six_writes: list[int], demote: tuple[str, ...]) -> None:
    """Partition, promote server6 too, write on both sides, demote some, heal."""
    pair.lab.partition("server5", "server6")
    for host in ("server5", "server6"):
        pair.wait_status(host, lambda s: s["connection"] != "Connected", 15, "link loss")
    pair.vigil("server6", "primary", pair.name)
    pair.write_blocks("server5", FIVE, b"five")
    if six_writes:
        pair.write_blocks("server6", six_writes, b"six")
    for host in demote:
        pair.vigil(host, "secondary", pair.name)
    pair.lab.heal("server5", "server6")


def test_default_disconnect_leaves_both_standalone(volume_pair):
    """after-sb-0pri/1pri/2pri default to disconnect."""
    pair = volume_pair
    pair.start_pair()
    split(pair, SIX, demote=("server5", "server6"))
    for host in ("server5", "server6"):
        status = pair.wait_status(host, lambda s: s["split_brain"] != "", 30,
                                  "split brain detected")
        assert status["connection"] == "StandAlone", status
    # Nothing was synced: each side kept its own writes.
    assert pair.read_block("server5", 12).startswith(b"five-12-")
    assert pair.read_block("server6", 12).startswith(b"six-12-")


def test_discard_zero_changes_syncs_from_the_side_that_wrote(volume_pair):
    pair = volume_pair
    pair.start_pair(net="after-sb-0pri discard-zero-changes;")
    split(pair, [], demote=("server5", "server6"))
    pair.wait_synced(timeout=30)
    assert pair.read_block("server6", 500).startswith(b"five-500-")
    assert pair.status("server6")["last_sync"]["blocks"] == len(FIVE)


def test_discard_least_changes_keeps_the_busier_side(volume_pair):
    pair = volume_pair
    pair.start_pair(net="after-sb-0pri discard-least-changes;")
    split(pair, SIX, demote=("server5", "server6"))
    pair.wait_synced(timeout=30)
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
    assert pair.read_block("server5", 12).startswith(b"six-12-")
    assert pair.read_block("server5", 500) == bytes(4096)  # server5's own write rolled back
    # Only the blocks either side changed moved (the OR of both bitmaps).
    assert pair.status("server5")["last_sync"]["blocks"] == len(set(FIVE) | set(SIX))


def test_discard_younger_primary_keeps_the_first_primary(volume_pair):
    pair = volume_pair
    pair.start_pair(net="after-sb-0pri discard-younger-primary;")
    split(pair, SIX, demote=("server5", "server6"))
    pair.wait_synced(timeout=30)
    assert pair.read_block("server6", 12).startswith(b"five-12-")
    assert pair.read_block("server6", 700) == bytes(4096)


def test_one_primary_discard_secondary(volume_pair):
    pair = volume_pair
    pair.start_pair(net="after-sb-1pri discard-secondary;")
    split(pair, SIX, demote=("server6",))
    pair.wait_synced(timeout=30)
    assert pair.status("server5")["role"] == "Primary"
    assert pair.read_block("server6", 13) == bytes(4096)
    assert pair.read_block("server6", 501).startswith(b"five-501-")


def test_manual_recovery_with_discard_my_data(volume_pair):
    pair = volume_pair
    pair.start_pair()
    split(pair, SIX, demote=("server6",))
    for host in ("server5", "server6"):
        pair.wait_status(host, lambda s: s["connection"] == "StandAlone", 30, "standalone")
    pair.vigil("server6", "connect", "--discard-my-data", pair.name)
    pair.vigil("server5", "connect", pair.name)
    pair.wait_synced(timeout=30)
    assert pair.read_block("server6", 700) == bytes(4096)
    assert pair.read_block("server6", 12).startswith(b"five-12-")
    assert pair.status("server6")["last_sync"]["blocks"] == len(set(FIVE) | set(SIX))
