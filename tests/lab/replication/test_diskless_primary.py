"""A diskless primary: its I/O goes through the peer (detach, and on-io-error detach).

DRBD's answer to a failing disk under a running service: the primary lets go of
its disk and goes on reading and writing the peer's, so the service never sees
the error; the disk comes back later with `attach`, which resyncs what changed.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.lab

BLOCK = 4096


def _read_direct(pair, host: str, block: int) -> str:
    """One block read through the host's volume device (O_DIRECT: no cache)."""
    return pair.host(host).run(f"dd if=/dev/drbd1 bs=4096 skip={block} count=1 iflag=direct "
                               "status=none | head -c 24").stdout


def test_a_detached_primary_reads_and_writes_through_its_peer(volume_pair):
    pair = volume_pair
    pair.start_pair(size="16M")
    pair.write_blocks("server5", [1, 2], b"before")
    said = pair.vigil("server5", "detach", pair.name).stdout
    assert "through the peer" in said
    status5 = pair.wait_status("server5", lambda s: s["disk"] == "Diskless", 10, "diskless")
    assert status5["role"] == "Primary" and status5["connection"] == "Connected"
    pair.wait_status("server6", lambda s: s["peer_disk"] == "Diskless", 10,
                     "server6 to see its peer diskless")

    # reads come from server6's disk, writes land there only
    assert _read_direct(pair, "server5", 2).startswith("before-2-")
    pair.write_blocks("server5", [7, 8, 9], b"diskless")
    pair.host("server5").run(["sync"])
    assert pair.read_block("server6", 8).startswith(b"diskless-8-")
    assert not pair.read_block("server5", 8).startswith(b"diskless")
    assert _read_direct(pair, "server5", 9).startswith("diskless-9-")
    assert pair.status("server6")["out_of_sync"] == 3 * BLOCK
    # its data is on server6 only: server6 keeps its disk
    refused = pair.vigil("server6", "detach", pair.name, check=False)
    assert refused.returncode == 11 and "diskless primary" in refused.stderr

    # the disk comes back once the node is secondary: only the three blocks are resynced
    early = pair.vigil("server5", "attach", pair.name, check=False)
    assert early.returncode == 11 and "demote first" in early.stderr
    pair.vigil("server5", "secondary", pair.name)
    assert "attached" in pair.vigil("server5", "attach", pair.name).stdout
    pair.wait_synced()
    assert pair.status("server5")["last_sync"]["blocks"] == 3
    assert pair.read_block("server5", 8).startswith(b"diskless-8-")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


def test_a_primary_whose_disk_fails_a_write_detaches_and_the_write_succeeds(volume_pair):
    """on-io-error detach (DRBD's default): server5's backing file lies on a tmpfs that
    fills up, so writing a block it never held fails (ENOSPC) under the volume."""
    pair = volume_pair
    pair.backing = "/var/lib/vigil/small/r0.img"
    s5, s6 = pair.host("server5"), pair.host("server6")
    s5.run("mkdir -p /var/lib/vigil/small && mount -t tmpfs -o size=24M small "
           "/var/lib/vigil/small")
    s6.run(["mkdir", "-p", "/var/lib/vigil/small"])
    try:
        pair.start_pair(size="16M", disk="on-io-error detach;")
        pair.write_blocks("server5", [1], b"before")
        s5.run("dd if=/dev/zero of=/var/lib/vigil/small/fill bs=1M status=none || true")
        pair.write_blocks("server5", [100, 101], b"after-failure")
        status5 = pair.wait_status("server5", lambda s: s["disk"] == "Diskless", 10,
                                   "diskless after the I/O error")
        assert status5["role"] == "Primary"
        assert pair.read_block("server6", 101).startswith(b"after-failure-101-")
        assert _read_direct(pair, "server5", 100).startswith("after-failure-100-")
        log = s5.read_file(f"/var/log/vigil/volume-{pair.name}.log")
        assert re.search(r"volume\.io_error .*op=write .*policy=detach", log), log[-1500:]
        assert re.search(r"volume\.detached .*on-io-error detach", log), log[-1500:]
    finally:
        pair.vigil("server5", "secondary", pair.name, check=False)
        pair.vigil("server5", "down", pair.name, check=False)
        s5.run("umount -l /var/lib/vigil/small", check=False)
