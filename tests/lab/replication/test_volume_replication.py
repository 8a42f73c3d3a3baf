"""Two nodes replicate; a disconnect leaves a bitmap; reconnecting moves only the dirty blocks."""

from __future__ import annotations

import random
import time

import pytest

from vigil.cli.progress import human_bytes
from vigil.testing.wait import wait_until

pytestmark = pytest.mark.lab

BLOCK = 4096


def test_replication_then_only_dirty_blocks_resync(volume_pair):
    pair = volume_pair
    pair.start_pair()
    size = pair.status("server5")["size"]
    # `all` is every resource of the configuration, as with drbdadm
    assert pair.vigil("server5", "role", "all").stdout.strip() == "Primary/Secondary"
    # Connected: writes reach both disks before they complete (protocol C).
    pair.write_blocks("server5", [0, 1, 100], b"connected")
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)

    pair.vigil("server5", "disconnect", pair.name)
    status = pair.status("server5")
    assert status["connection"] == "StandAlone" and status["role"] == "Primary"
    rng = random.Random(8)
    dirty = sorted(rng.sample(range(size // BLOCK), 37))
    pair.write_blocks("server5", dirty, b"apart")
    assert pair.status("server5")["out_of_sync"] == len(dirty) * BLOCK
    assert pair.data_digest("server5", size) != pair.data_digest("server6", size)
    # The secondary was told it missed writes: it is outdated and refuses promotion.
    outdated = pair.wait_status("server6", lambda s: s["disk"] == "Outdated", 10)
    assert outdated["role"] == "Secondary"
    refused = pair.vigil("server6", "primary", pair.name, check=False)
    assert refused.returncode == 11, refused.stderr
    assert "outdated" in refused.stderr

    before = pair.status("server6")["stats"]["resync_blocks"]
    messages_before = pair.status("server5")["stats"]["resync_messages"]
    pair.vigil("server5", "connect", pair.name)
    pair.wait_synced()
    target = pair.status("server6")
    assert target["stats"]["resync_blocks"] - before == len(dirty)
    # the lone blocks went together (RS_BATCH), not a message each
    assert pair.status("server5")["stats"]["resync_messages"] - messages_before < len(dirty)
    assert target["last_sync"]["blocks"] == len(dirty)
    assert target["disk"] == "UpToDate" and target["out_of_sync"] == 0
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


def test_secondary_refuses_io_and_wrong_secret_never_connects(volume_pair):
    pair = volume_pair
    pair.start_pair()
    denied = pair.host("server6").run(
        "dd if=/dev/drbd1 of=/dev/null bs=4096 count=1 iflag=direct", check=False)
    assert denied.returncode != 0 and "Input/output error" in denied.stderr
    # A peer with another shared secret is refused at the handshake.
    pair.vigil("server6", "down", pair.name)
    pair.configure("server6", secret="wrong")
    pair.up("server6")
    status = pair.wait_status("server6", lambda s: s["stats"] is not None, 5)
    assert status["connection"] != "Connected"
    pair.wait_status("server5", lambda s: s["connection"] == "Connecting", 10)
    # The log line follows the failed handshake; wait for it rather than read once.
    wait_until(lambda: "authentication failed"
               in pair.host("server5").read_file("/var/log/vigil/volume-r0.log"),
               10, "server5 logs the failed authentication")


@pytest.mark.parametrize("protocol", ["A", "B"])
def test_protocols_a_and_b_replicate(volume_pair, protocol):
    pair = volume_pair
    pair.start_pair(protocol=protocol)
    assert pair.status("server5")["protocol"] == protocol
    before = pair.status("server6")["stats"]["nr"]
    pair.host("server5").run("dd if=/dev/urandom of=/dev/drbd1 bs=1M count=8 oflag=direct,sync "
                             "status=none")
    # A FUSE fsync (a flush through loop) waits for the peer's flush under B; under A the
    # data follows shortly: either way both disks end up equal.
    size = pair.status("server5")["size"]
    pair.wait_status("server6", lambda s: s["stats"]["nr"] >= before + (8 << 20), 10,
                     "data received")
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


def test_wait_sync_shows_the_initial_syncs_progress(volume_pair):
    """Into a pipe, wait-sync prints plain progress lines (percent, rate, time left)."""
    pair = volume_pair
    for host in ("server5", "server6"):
        pair.configure(host)
        pair.create(host, "128M")
        pair.up(host)
    pair.wait_status("server5", lambda s: s["connection"] == "Connected", 30, "connected")
    pair.vigil("server5", "primary", "--force", pair.name)
    said = pair.vigil("server5", "wait-sync", pair.name, "--timeout", "120",
                      timeout=130).stdout.splitlines()
    assert said[-1] == f"{pair.name}: in sync", said
    progress = [line for line in said[:-1] if "% (" in line]
    assert progress, said
    size = human_bytes(pair.status("server5")["size"])
    assert all(f" of {size}) " in line and "/s, " in line for line in progress), said
    assert "\r" not in "".join(said)


def test_pause_sync_on_the_target_holds_the_resync_until_resume_sync(volume_pair):
    """drbdadm's pause-sync on either node stops the resync (resync-suspended:user there,
    :peer on the other); resume-sync lets it finish."""
    pair = volume_pair
    for host in ("server5", "server6"):
        pair.configure(host, disk="c-plan-ahead 0; resync-rate 4M;")
        pair.create(host, "64M")
        pair.up(host)
    pair.wait_status("server5", lambda s: s["connection"] == "Connected", 30, "connected")
    refused = pair.vigil("server6", "pause-sync", pair.name, check=False)
    assert refused.returncode != 0 and "no resync is running" in refused.stderr
    pair.vigil("server5", "primary", "--force", pair.name)
    pair.wait_status("server5", lambda s: s["replication"] == "SyncSource"
                     and s["sync"]["percent"] > 0, 20, "the initial sync under way")
    assert "resync paused" in pair.vigil("server6", "pause-sync", pair.name).stdout
    assert pair.status("server6")["sync_paused"] == "user"
    pair.wait_status("server5", lambda s: s["sync_paused"] == "peer", 10,
                     "the source told of the target's pause")
    left: list[int] = []

    def settled() -> bool:  # what was in flight at the pause has landed
        left.append(pair.status("server5")["sync"]["left_bytes"])
        return len(left) >= 3 and left[-1] == left[-2] == left[-3]

    wait_until(settled, 15, lambda: f"the resync to stand still (left: {left[-5:]})")
    time.sleep(1.0)  # a negative: at 4 MB/s a running resync moves 4 MB in this second
    held = pair.status("server5")
    assert held["sync"]["left_bytes"] == left[-1] > 0
    assert "resync-suspended:peer" in pair.vigil("server5", "status", pair.name).stdout
    assert "resync resumed" in pair.vigil("server6", "resume-sync", pair.name).stdout
    pair.wait_synced(timeout=60)
    for host in ("server5", "server6"):
        assert pair.status(host)["sync_paused"] is None
    again = pair.vigil("server6", "resume-sync", pair.name, check=False)
    assert again.returncode != 0 and "not paused here" in again.stderr


def test_invalidate_remote_rewrites_the_peers_data_from_here(volume_pair):
    pair = volume_pair
    pair.start_pair()
    size = pair.status("server5")["size"]
    pair.write_blocks("server5", [3, 200], b"good")
    with open(pair.host("server6").path(pair.backing), "r+b") as backing:  # rot behind DRBD
        backing.seek(200 * BLOCK)
        backing.write(b"rotten" * 100)
    assert pair.data_digest("server5", size) != pair.data_digest("server6", size)
    refused = pair.vigil("server6", "invalidate-remote", pair.name, check=False)
    assert refused.returncode != 0 and "cannot invalidate a primary peer" in refused.stderr
    said = pair.vigil("server5", "invalidate-remote", pair.name).stdout
    assert "full resync to it" in said
    pair.wait_status("server6", lambda s: s["stats"]["resync_blocks"] >= size // BLOCK, 60,
                     "server6 rewritten block by block")
    pair.wait_synced()
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
    assert pair.read_block("server6", 200).startswith(b"good-200-")
