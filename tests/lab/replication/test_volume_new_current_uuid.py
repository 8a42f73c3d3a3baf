"""drbdadm new-current-uuid on two real nodes: skipping the initial sync, refusals, -d.

Two fresh backing files are all zeros, so they are identical: `new-current-uuid
--clear-bitmap` makes both UpToDate without moving a block, as DRBD does.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

HOSTS = ("server5", "server6")


def generations(status: dict) -> list[int]:
    return [int(part, 16) for part in status["generations"].split(":")]


def both_connected_fresh(pair, size: str) -> None:
    for host in HOSTS:
        pair.configure(host)
        pair.create(host, size)
        pair.up(host)
    for host in HOSTS:
        pair.wait_status(host, lambda s: s["connection"] == "Connected"
                         and s["replication"] == "Established", 30, "connected")


def test_clear_bitmap_on_two_fresh_disks_skips_the_initial_sync(volume_pair):
    pair = volume_pair
    both_connected_fresh(pair, "32M")
    for host in HOSTS:
        assert pair.vigil(host, "dstate", pair.name).stdout.strip() == \
            "Inconsistent/Inconsistent"

    # -d says what it would do and does nothing
    dry = pair.vigil("server5", "-d", "new-current-uuid", "--clear-bitmap", pair.name)
    assert "new-current-uuid --clear-bitmap" in dry.stdout
    assert pair.vigil("server5", "dstate", pair.name).stdout.strip() == \
        "Inconsistent/Inconsistent"
    assert generations(pair.status("server5"))[0] == 0

    done = pair.vigil("server5", "new-current-uuid", "--clear-bitmap", "all")
    assert "initial sync skipped" in done.stdout
    for host in HOSTS:
        pair.wait_status(host, lambda s: s["disk"] == "UpToDate"
                         and s["peer_disk"] == "UpToDate", 15, "both UpToDate")
        assert pair.vigil(host, "dstate", pair.name).stdout.strip() == "UpToDate/UpToDate"
    five, six = pair.status("server5"), pair.status("server6")
    assert generations(five)[0] != 0
    assert generations(five)[:2] == generations(six)[:2] == [generations(five)[0], 0]
    for status in (five, six):
        assert status["replication"] == "Established"
        assert status["out_of_sync"] == 0
        assert status["stats"]["resync_blocks"] == 0 and status["stats"]["nr"] == 0
        assert "last_sync" not in status

    # UpToDate for real: promotion needs no --force, writes replicate, still no resync
    pair.vigil("server5", "primary", pair.name)
    pair.write_blocks("server5", [0, 7, 4000], b"skip")
    pair.wait_synced()
    assert pair.read_block("server6", 7).startswith(b"skip-7-")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)

    # a reconnect agrees there is nothing to resync
    pair.vigil("server6", "disconnect", pair.name)
    pair.vigil("server6", "connect", pair.name)
    for host in HOSTS:
        pair.wait_status(host, lambda s: s["connection"] == "Connected"
                         and s["replication"] == "Established"
                         and s["peer_disk"] == "UpToDate", 30, "reconnected in sync")
        assert pair.status(host)["stats"]["resync_blocks"] == 0
    assert pair.status("server6")["disk"] == "UpToDate"


def test_refused_while_connected_and_a_new_generation_when_disconnected(volume_pair):
    pair = volume_pair
    pair.start_pair(size="16M")
    before = pair.status("server5")
    for host, args in (("server5", ["new-current-uuid"]),
                       ("server6", ["new-current-uuid", "--clear-bitmap"])):
        done = pair.vigil(host, *args, pair.name, check=False)
        assert done.returncode == 10, done
        assert "connected" in done.stderr
    assert pair.status("server5")["generations"] == before["generations"]

    # attach says the disk is attached (10)
    done = pair.vigil("server6", "attach", "all", check=False)
    assert done.returncode == 10 and "attached already" in done.stderr
    assert pair.status("server6")["disk"] == "UpToDate"

    # disconnected, the primary starts a new generation: its old current becomes the
    # bitmap's base (its disk state and bitmap stay); --clear-bitmap empties the bitmap
    pair.vigil("server5", "disconnect", pair.name)
    # a primary without its peer cannot go diskless (11)
    done = pair.vigil("server5", "detach", pair.name, check=False)
    assert done.returncode == 11 and "UpToDate peer" in done.stderr
    pair.write_blocks("server5", [1, 2, 3], b"apart")
    lost = generations(pair.status("server5"))
    done = pair.vigil("server5", "new-current-uuid", pair.name)
    status = pair.status("server5")
    fresh = generations(status)
    assert fresh[0] not in (0, lost[0]) and fresh[1] == lost[0] and fresh[2] == lost[1]
    assert f"{fresh[0]:016X}" in done.stdout
    assert status["disk"] == "UpToDate" and status["out_of_sync"] == 3 * 4096
    pair.vigil("server5", "new-current-uuid", "--clear-bitmap", pair.name)
    status = pair.status("server5")
    assert generations(status)[1] == fresh[0] and status["out_of_sync"] == 0

    # the peer's generation is history now: as in DRBD, a full sync brings it back
    pair.vigil("server5", "connect", pair.name)
    pair.wait_synced(timeout=90)
    blocks = pair.status("server5")["size"] // 4096
    assert pair.status("server6")["last_sync"]["blocks"] == blocks
    assert pair.read_block("server6", 2).startswith(b"apart-2-")
