"""A diskless primary: its I/O goes through the peer (detach, and on-io-error detach).

DRBD's answer to a failing disk under a running service: the primary lets go of
its disk and goes on reading and writing the peer's, so the service never sees
the error; the disk comes back later with `attach`, which resyncs what changed,
under the running primary too.
"""

from __future__ import annotations

import re

import pytest

from vigil.testing import wait_until

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

    # the disk comes back under the running primary: only the three blocks are resynced
    said = pair.vigil("server5", "attach", pair.name).stdout
    assert "attached" in said, said
    pair.wait_synced()
    status5 = pair.status("server5")
    assert status5["role"] == "Primary" and status5["disk"] == "UpToDate"
    # the three, and the two written before the detach if the peer had not yet said
    # they were flushed when the link was made anew (such writes are always resynced)
    assert 3 <= status5["last_sync"]["blocks"] <= 5
    assert pair.read_block("server5", 8).startswith(b"diskless-8-")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


#: Writes through the device while the disk is attached under it and resynced: each
#: block once, in random order, either whole or a single sector (a sector of a block
#: not resynced yet must be completed with the peer's copy of the block; a block is
#: written once so that no later write hides a wrong one), each remembered; then
#: every sector written is read back through the device.
MODEL_WRITER = r"""
import mmap, os, random, sys
SECTOR, BLOCK = 512, 4096
blocks, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
fd = os.open("/dev/drbd1", os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, BLOCK)
model, order = {}, list(range(blocks))
rng.shuffle(order)
for count, block in enumerate(order):
    if rng.random() < 0.5:
        offset, length = block * BLOCK, BLOCK
    else:
        offset, length = block * BLOCK + rng.randrange(8) * SECTOR, SECTOR
    data = bytes([count % 251 + 1]) * length
    buf[:length] = data
    os.pwritev(fd, [memoryview(buf)[:length]], offset)
    for s in range(0, length, SECTOR):
        model[(offset + s) // SECTOR] = data[0]
    if count % 50 == 0:
        os.fsync(fd)
os.fsync(fd)
wrong = []
for sector, value in sorted(model.items()):
    os.preadv(fd, [memoryview(buf)[:SECTOR]], sector * SECTOR)
    if buf[:SECTOR] != bytes([value]) * SECTOR:
        wrong.append(sector)
print(f"writes {len(order)} sectors {len(model)} wrong {len(wrong)} {wrong[:10]}")
"""


def test_a_disk_attached_under_a_primary_resyncs_while_it_writes(volume_pair):
    """The primary's disk comes back while the service writes: it resyncs from the
    peer (slowly, so that the writes cross it), reads what is not back yet from the
    peer, and every write lands on both disks; nothing written is lost, the disks end
    equal, and the primary never stops serving."""
    pair = volume_pair
    pair.start_pair(size="16M")
    for host in ("server5", "server6"):  # a slow resync from now on
        pair.configure(host, disk="c-plan-ahead 0; resync-rate 1M;")
        pair.vigil(host, "adjust", pair.name)
    s5 = pair.host("server5")
    # 6 MiB written while diskless: the resync at 1 MiB/s lasts about 6 s
    pair.vigil("server5", "detach", pair.name)
    pair.wait_status("server6", lambda s: s["peer_disk"] == "Diskless", 10, "peer diskless")
    s5.run("dd if=/dev/urandom of=/dev/drbd1 bs=1M count=6 oflag=direct status=none")
    s5.write_file("/tmp/model_writer.py", MODEL_WRITER)
    writer = s5.spawn(["python3", "/tmp/model_writer.py", "4000", "7"],
                      name="model-writer")
    said = pair.vigil("server5", "attach", pair.name).stdout
    assert "resyncing from the peer while primary" in said, said + pair.log_tail("server5")
    status = pair.status("server5")
    assert status["role"] == "Primary" and status["replication"] == "SyncTarget"
    wait_until(lambda: not writer.alive(), 120, "the writer to finish")
    result = writer.output()
    assert re.search(r"writes \d+ sectors \d+ wrong 0 ", result), result
    pair.wait_synced()
    status = pair.status("server5")
    assert status["disk"] == "UpToDate" and status["last_sync"]["blocks"] >= 1536
    size = status["size"]
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
