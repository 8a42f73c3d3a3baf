"""Online verify finds a block corrupted behind vigil's back; a reconnect repairs it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab


def test_verify_finds_corruption_and_resync_repairs_it(volume_pair):
    pair = volume_pair
    pair.start_pair()
    pair.write_blocks("server5", [3, 4, 5], b"good")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
    # Flip bytes in block 4 of the secondary's backing file, outside vigil.
    with open(pair.host("server6").path(pair.backing), "r+b") as backing:
        backing.seek(4 * 4096 + 100)
        backing.write(b"CORRUPT")
    assert pair.status("server6")["out_of_sync"] == 0  # vigil cannot know yet

    pair.vigil("server5", "verify", pair.name)
    status = pair.wait_status("server5", lambda s: s.get("verify", {}).get("running") is False,
                              60, "verify to finish")
    assert status["verify"]["out_of_sync"] == 1
    assert status["out_of_sync"] == 4096
    assert pair.status("server6")["out_of_sync"] == 4096
    text = pair.vigil("server5", "status", pair.name).stdout
    assert "out-of-sync 1 blocks" in text

    # As with DRBD, marked blocks are resynced on the next connect.
    pair.vigil("server5", "disconnect", pair.name)
    pair.vigil("server5", "connect", pair.name)
    pair.wait_synced()
    assert pair.status("server6")["last_sync"]["blocks"] == 1
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
