"""kill -9 of the primary's daemon mid-write: the secondary holds every acknowledged write."""

from __future__ import annotations

import time

import pytest

from vigil.replication import loopdev
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

WRITER = r"""
import mmap, os, sys
acks = open(sys.argv[1], "w", buffering=1)
fd = os.open("/dev/drbd1", os.O_RDWR | os.O_DIRECT)
buf = mmap.mmap(-1, 4096)
for i in range(int(sys.argv[2])):
    buf.seek(0)
    buf.write((b"seq%08d " % i) * 341 + b"-" * 4)
    try:
        os.pwrite(fd, buf, i * 4096)
    except OSError as exc:
        print("stopped", i, exc, file=sys.stderr)
        break
    acks.write(f"{i}\n")
"""


def pattern(i: int) -> bytes:
    return (b"seq%08d " % i) * 341 + b"-" * 4


def test_kill9_primary_daemon_secondary_has_every_acked_write(volume_pair):
    pair = volume_pair
    pair.start_pair()
    acks = pair.lab.directory / "acks.txt"
    writer = pair.host("server5").spawn(
        ["python3", "-c", WRITER, str(acks), "12000"], name="writer")

    def acked() -> int:
        try:
            return len(acks.read_text().splitlines())
        except OSError:
            return 0

    wait_until(lambda: acked() >= 300, 30, "the writer to get 300 writes acknowledged")
    # The pid is the daemon's inside server5 (a PID namespace): signal it from there.
    pair.host("server5").run(["kill", "-KILL", str(pair.daemon_pid("server5"))])
    assert writer.wait(20), "the writer must fail (EIO) once the daemon is gone"
    done = acks.read_text().splitlines()
    assert len(done) < 12000, "the kill came after the last write: nothing was tested"
    assert "Input/output error" in writer.output() or "stopped" in writer.output()

    pair.wait_status("server6", lambda s: s["connection"] != "Connected", 10,
                     "server6 to notice the lost primary")
    pair.vigil("server6", "primary", pair.name)
    blocks = [int(line) for line in done]
    # Read back through the promoted device (not the backing file).
    image = pair.lab.directory / "server6.img"
    count = (max(blocks) + 1) * 4096 // (1 << 20) + 1
    pair.host("server6").run(["dd", "if=/dev/drbd1", f"of={image}", "bs=1M", f"count={count}",
                              "iflag=direct", "status=none"], timeout=60)
    data = image.read_bytes()
    missing = [i for i in blocks if data[i * 4096:(i + 1) * 4096] != pattern(i)]
    assert not missing, f"{len(missing)} acknowledged writes missing on server6: {missing[:10]}"


def test_crash_of_a_host_with_the_device_mounted_ends_every_process(volume_pair):
    """The lab's power-off must not hang when the volume daemon is the host's last process.

    Then the host's mount namespace dies with the daemon, and its ext4 mount's
    final sync waits for the daemon's own FUSE connection, which the kernel
    only closes afterwards: the lab aborts that connection.
    """
    pair = volume_pair
    pair.configure("server5")
    pair.create("server5")
    pair.up("server5", "--standalone")
    pair.vigil("server5", "primary", "--force", pair.name)
    pair.host("server5").run("mkfs.ext4 -q -F /dev/drbd1 && mkdir -p /mnt/volume && "
                             "mount /dev/drbd1 /mnt/volume && echo data > /mnt/volume/file",
                             timeout=60)
    pair.lab.crash("server5")  # raises LabError if a process would not die
    identity = pair.loops[0]
    wait_until(lambda: not loopdev.is_ours(identity), 15,
               f"the kernel to detach {identity.name} once nothing has it open")
    pair.lab.boot("server5")


def test_promoting_after_the_primary_lost_power_asks_the_peer_instead_of_waiting_ping_int(
        volume_pair):
    """The primary's host loses power: its idle link still looks connected on the
    secondary until ping-int (10 s by default; 60 s here, so that no keepalive falls
    between the crash and the promotion however long the crash takes on a busy machine).
    A promotion probes the peer now: no answer within ping-timeout drops the link and the
    promotion goes on, as heartbeat's takeover (drbddisk, a few seconds after deadtime)
    needs."""
    pair = volume_pair
    pair.start_pair(ping_int="60")
    pair.write_blocks("server5", [7], b"before-crash")
    pair.wait_synced()
    assert pair.status("server6")["peer_role"] == "Primary"
    pair.lab.crash("server5")
    assert pair.status("server6")["connection"] == "Connected"  # the link looks alive
    started = time.monotonic()
    done = pair.vigil("server6", "primary", pair.name, check=False)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert took < 5, f"the promotion took {took:.1f} s (ping-int is 60 s)"
    status = pair.status("server6")
    assert status["role"] == "Primary" and status["connection"] != "Connected"
    assert pair.read_block("server6", 7).startswith(b"before-crash-7-")


def test_promoting_while_the_primary_lives_is_still_refused(volume_pair):
    pair = volume_pair
    pair.start_pair()
    done = pair.vigil("server6", "primary", pair.name, check=False)
    assert done.returncode != 0
    assert "the peer is primary" in done.stdout + done.stderr
    status = pair.status("server6")
    assert status["role"] == "Secondary" and status["connection"] == "Connected"
