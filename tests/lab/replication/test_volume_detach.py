"""detach and attach, as drbdadm's: a secondary's disk is let go and taken back online.

The common use: a secondary's backing disk must be replaced (or checked) while the
primary goes on writing. Detached, the secondary stays connected and diskless;
the primary marks every write; attach resyncs exactly those blocks; a new disk
(fresh metadata) gets a full sync.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

BLOCK = 4096


def test_a_secondary_detaches_and_attaches_back_with_only_the_changes_resynced(volume_pair):
    pair = volume_pair
    pair.start_pair(size="16M")
    pair.write_blocks("server5", [1, 2], b"before")
    pair.wait_synced()

    said = pair.vigil("server6", "detach", pair.name).stdout
    assert "diskless" in said
    status6 = pair.wait_status("server6", lambda s: s["disk"] == "Diskless", 10, "diskless")
    assert status6["connection"] == "Connected"
    pair.wait_status("server5", lambda s: s["peer_disk"] == "Diskless", 10,
                     "server5 to see its peer diskless")
    # a diskless node cannot be promoted, and its disk is free for the operator
    done = pair.vigil("server6", "primary", pair.name, check=False)
    assert done.returncode == 11 and "diskless" in done.stderr

    pair.write_blocks("server5", [10, 11, 12], b"while-diskless")
    status5 = pair.status("server5")
    assert status5["out_of_sync"] == 3 * BLOCK, status5
    assert not pair.read_block("server6", 11).startswith(b"while-diskless")

    said = pair.vigil("server6", "attach", pair.name).stdout
    assert "attached" in said
    pair.wait_synced()
    assert pair.status("server6")["last_sync"]["blocks"] == 3
    assert pair.read_block("server6", 11).startswith(b"while-diskless-11-")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


def test_a_replaced_disk_is_attached_with_fresh_metadata_and_fully_synced(volume_pair):
    pair = volume_pair
    pair.start_pair(size="16M")
    pair.write_blocks("server5", [5], b"kept")
    pair.wait_synced()
    s6 = pair.host("server6")
    pair.vigil("server6", "detach", pair.name)
    pair.wait_status("server6", lambda s: s["disk"] == "Diskless", 10, "diskless")
    # the operator swaps the disk: a new, empty one with fresh metadata
    s6.run(["rm", "-f", pair.backing])
    s6.run(["truncate", "-s", "16M", pair.backing])
    pair.vigil("server6", "create-md", pair.name)
    pair.write_blocks("server5", [6], b"meanwhile")
    pair.vigil("server6", "attach", pair.name)
    pair.wait_synced()
    blocks = pair.status("server5")["size"] // BLOCK
    assert pair.status("server6")["last_sync"]["blocks"] == blocks
    assert pair.read_block("server6", 5).startswith(b"kept-5-")
    assert pair.read_block("server6", 6).startswith(b"meanwhile-6-")
