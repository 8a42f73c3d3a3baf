"""A promoted node reads what its peer wrote, not what its own page cache kept.

The volume daemon holds its loop device open, so the kernel keeps the device's
page cache across unmounts (a DRBD device, closed on the secondary, loses it).
The peer's writes reach the backing file directly, past that cache. Promotion
must forget it: otherwise a file system mounted after a failback reads blocks
cached while this node was primary last time (an old extent tree, an old
directory) beside new ones read from disk.
"""

from __future__ import annotations

import re

import pytest

from vigil.testing import wait_until

pytestmark = pytest.mark.lab

MOUNT = "/mnt/r0"


def _switch(pair, old: str, new: str) -> None:
    pair.vigil(old, "secondary", pair.name)
    pair.vigil(new, "primary", pair.name)


def test_a_failback_mounts_the_file_system_the_peer_left(volume_pair):
    pair = volume_pair
    pair.start_pair(size="32M")
    s5, s6 = pair.host("server5"), pair.host("server6")
    for host in (s5, s6):
        host.run(["mkdir", "-p", MOUNT])
    s5.run(["mkfs.ext4", "-q", "-F", "/dev/drbd1"])
    s5.run(["mount", "/dev/drbd1", MOUNT])
    s5.run(f"seq 1 20000 > {MOUNT}/numbers && mkdir {MOUNT}/old-dir", timeout=60)
    s5.run(["umount", MOUNT])
    # the file system's metadata is now in server5's page cache of the device
    _switch(pair, "server5", "server6")
    s6.run(["mount", "/dev/drbd1", MOUNT])
    s6.run(f"seq 50000 90000 >> {MOUNT}/numbers && rmdir {MOUNT}/old-dir && "
           f"mkdir {MOUNT}/new-dir && echo written-on-server6 > {MOUNT}/new-dir/note",
           timeout=60)
    s6.run(["umount", MOUNT])
    _switch(pair, "server6", "server5")
    s5.run(["mount", "/dev/drbd1", MOUNT])
    try:
        listing = s5.run(["ls", MOUNT]).stdout.split()
        assert "new-dir" in listing and "old-dir" not in listing, listing
        assert s5.run(["cat", f"{MOUNT}/new-dir/note"]).stdout == "written-on-server6\n"
        numbers = s5.run(["tail", "-n", "1", f"{MOUNT}/numbers"]).stdout
        assert numbers == "90000\n", numbers
        assert s5.run(["wc", "-l", f"{MOUNT}/numbers"]).stdout.split()[0] == str(20000 + 40001)
    finally:
        s5.run(["umount", MOUNT], check=False)
    fsck = s5.run(["fsck.ext4", "-n", "-f", "/dev/drbd1"], check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_a_page_held_in_memory_is_dropped_too(volume_pair):
    """BLKFLSBUF leaves a page someone maps: promotion then truncates the whole cache."""
    pair = volume_pair
    pair.start_pair(size="16M")
    s5 = pair.host("server5")
    pair.write_blocks("server5", [3], b"from-server5")
    # a process on server5 maps block 3 of the device and keeps the mapping
    holder = s5.spawn(["python3", "-c",
                       "import mmap, os, time\n"
                       "fd = os.open('/dev/drbd1', os.O_RDONLY)\n"
                       "m = mmap.mmap(fd, 16384, mmap.MAP_SHARED, mmap.PROT_READ)\n"
                       "print(m[12288:12300].decode(), flush=True)\n"
                       "time.sleep(600)\n"], name="mapper")
    try:
        wait_until(lambda: "from-server5" in holder.output(), 10, "the mapping to be read")
        _switch(pair, "server5", "server6")
        pair.write_blocks("server6", [3], b"from-server6")
        pair.wait_synced()
        _switch(pair, "server6", "server5")
        read = s5.run("dd if=/dev/drbd1 bs=4096 skip=3 count=1 status=none | head -c 15").stdout
        assert read == "from-server6-3-", read
    finally:
        holder.stop()
    log = s5.read_file(f"/var/log/vigil/volume-{pair.name}.log")
    assert re.search(r"volume\.stale_cache .*pages=[1-9]", log), log[-2000:]
