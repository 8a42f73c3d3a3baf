"""The replication link survives packet loss, and reconnects by itself after a cut."""

from __future__ import annotations

import time

import pytest

from vigil.kernel.namespaces import named_netns_path
from vigil.kernel.nftables import Nftables
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

LOSS_TABLE = "vigil_volume_loss"


def lossy_switch(lab, percent: int) -> None:
    """Drop `percent`% of the frames the switch forwards (nftables numgen in the switch)."""
    family, table = "bridge", LOSS_TABLE
    Nftables(named_netns_path(lab.switch_netns)).apply([
        {"add": {"table": {"family": family, "name": table}}},
        {"add": {"chain": {"family": family, "table": table, "name": "forward",
                           "type": "filter", "hook": "forward", "prio": -10,
                           "policy": "accept"}}},
        {"add": {"rule": {"family": family, "table": table, "chain": "forward", "expr": [
            {"match": {"op": "<", "left": {"numgen": {"mode": "random", "mod": 100}},
                       "right": percent}},
            {"counter": None},
            {"drop": None}]}}},
    ])


def dropped(lab) -> int:
    """Frames the loss rule dropped so far."""
    objects = Nftables(named_netns_path(lab.switch_netns)).list("table", "bridge", LOSS_TABLE)
    return sum(expr["counter"]["packets"] for o in objects if "rule" in o
               for expr in o["rule"]["expr"] if "counter" in expr)


def test_replication_under_packet_loss(volume_pair):
    pair = volume_pair
    pair.start_pair()
    lossy_switch(pair.lab, 5)
    pair.host("server5").run("dd if=/dev/urandom of=/dev/drbd1 bs=64k count=256 oflag=direct "
                             "status=none", timeout=120)
    assert dropped(pair.lab) > 0, "the loss rule dropped nothing: nothing was tested"
    # TCP carries the writes through the loss; a ping answer that comes late twice in a
    # row may still end the link (as DRBD's ping-timeout does), and then the writes the
    # peer had not flushed are resynced after the reconnect: either way the pair must
    # come back in sync, with equal data.
    wait_until(lambda: (lambda s: s["connection"] == "Connected" and s["out_of_sync"] == 0)(
        pair.status("server5")), 60, "the pair connected and in sync after the writes")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


def test_reconnects_and_resyncs_after_a_cut(volume_pair):
    pair = volume_pair
    log = pair.lab.directory / "handlers"
    for host in ("server5", "server6"):
        for name in ("before-resync-source", "before-resync-target", "after-resync-target"):
            pair.host(host).write_file(f"/etc/vigil-test/{name}",
                                       f"#!/bin/sh\necho {host} {name} >> {log}\n", mode=0o755)
    pair.start_pair(handlers=" ".join(f"{n} /etc/vigil-test/{n};" for n in (
        "before-resync-source", "before-resync-target", "after-resync-target")))
    log.write_text("")  # the initial sync ran them once already
    pair.lab.partition("server5", "server6")
    pair.wait_status("server5", lambda s: s["connection"] == "Connecting", 15, "link loss")
    pair.write_blocks("server5", [7, 8, 9, 4000], b"cut")
    assert pair.status("server5")["out_of_sync"] == 4 * 4096
    pair.lab.heal("server5", "server6")
    pair.wait_synced(timeout=30)  # no admin command: the link came back by itself
    assert pair.status("server6")["last_sync"]["blocks"] == 4
    # DRBD's resync handlers ran, each on its side (after-resync-target: when it is done)
    expected = ["server5 before-resync-source", "server6 after-resync-target",
                "server6 before-resync-target"]
    wait_until(lambda: sorted(log.read_text().splitlines()) == expected, 10,
               lambda: f"the resync handlers: {log.read_text()!r}")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)


def test_writes_the_peer_acknowledged_but_never_flushed_are_resynced_after_a_cut(volume_pair):
    """Protocol C: an ack means the peer's page cache; until a peer flush covers a write,
    losing the link marks it out of sync (the peer may lose it with its power)."""
    pair = volume_pair
    pair.start_pair()
    for attempt in range(3):  # the peer is asked to flush 1 s after an ack: cut before
        blocks = [100 + 10 * attempt, 101 + 10 * attempt, 102 + 10 * attempt]
        started = time.monotonic()
        pair.write_blocks("server5", blocks, b"unflushed")
        pair.lab.partition("server5", "server6")
        if time.monotonic() - started < 0.8:
            break
        pair.lab.heal("server5", "server6")  # too slow to judge: again
        pair.wait_synced(timeout=30)
    else:
        pytest.skip("could not write and cut within 0.8 s three times")
    # acknowledged by the peer, not flushed there: out of sync once the link is lost
    pair.wait_status("server5", lambda s: s["connection"] == "Connecting", 15, "link loss")
    assert pair.status("server5")["out_of_sync"] >= 3 * 4096
    pair.lab.heal("server5", "server6")
    pair.wait_synced(timeout=30)
    assert pair.status("server6")["last_sync"]["blocks"] >= 3
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)

    # a flush asked by the peer's timer makes acknowledged writes durable: nothing to resync
    pair.write_blocks("server5", [300, 301], b"flushed")
    wait_until(lambda: pair.status("server5").get("peer_unflushed", 0) == 0, 10,
               "the peer's flush")
    pair.lab.partition("server5", "server6")
    pair.wait_status("server5", lambda s: s["connection"] == "Connecting", 15, "link loss")
    assert pair.status("server5")["out_of_sync"] == 0
    pair.lab.heal("server5", "server6")
    pair.wait_synced(timeout=30)


def test_primary_losing_its_peer_runs_fence_peer(volume_pair):
    """fencing resource-only: the fence-peer handler runs, exit 4 marks the peer outdated."""
    pair = volume_pair
    marker = pair.lab.directory / "fenced"
    handler = f"echo $DRBD_RESOURCE $DRBD_PEER_ADDRESS > {marker}; exit 4"
    for host in ("server5", "server6"):
        pair.host(host).write_file("/etc/vigil-test/fence-peer", f"#!/bin/sh\n{handler}\n",
                                   mode=0o755)
    pair.start_pair(disk="fencing resource-only;",
                    handlers="fence-peer /etc/vigil-test/fence-peer;")
    pair.lab.partition("server5", "server6")
    status = pair.wait_status("server5", lambda s: s["peer_disk"] == "Outdated", 20,
                              "the fence-peer handler to outdate the peer")
    assert status["role"] == "Primary"
    assert marker.read_text().split() == [pair.name, "198.51.100.6"]
    # Writes go on (resource-only does not freeze I/O).
    pair.write_blocks("server5", [42], b"fenced")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(p) for p in listing.read().split()]
    except OSError:
        return []


def _waits(pid: int) -> dict[int, str]:
    """Where each child of `pid` waits in the kernel (for a failure's message)."""
    out = {}
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/wchan") as wchan, open(f"/proc/{child}/comm") as comm:
                out[child] = f"{comm.read().strip()}:{wchan.read()}"
        except OSError:
            continue
    return out


def _blocked_in_io(pid: int) -> bool:
    """A child of `pid` sleeps uninterruptibly in the kernel: its write waits for the device."""
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/stat") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state == "D":
            return True
    return False


@pytest.mark.parametrize("handler, frozen", [("exit 1", True), ("exit 7", False)])
def test_resource_and_stonith_freezes_writes_until_the_fence_is_resolved(volume_pair, handler,
                                                                          frozen):
    """A failed fence-peer keeps writes frozen until resume-io; a successful one thaws them."""
    pair = volume_pair
    ran = pair.lab.directory / "fence-ran"
    for host in ("server5", "server6"):
        pair.host(host).write_file("/etc/vigil-test/fence-peer",
                                   f"#!/bin/sh\ntouch {ran}\n{handler}\n", mode=0o755)
    pair.start_pair(disk="fencing resource-and-stonith;",
                    handlers="fence-peer /etc/vigil-test/fence-peer;")
    pair.lab.partition("server5", "server6")
    wait_until(ran.exists, 20, "the fence-peer handler ran")
    if not frozen:
        pair.wait_status("server5", lambda s: s["peer_disk"] == "Outdated"
                         and s["io_suspended"] is None, 20, "writes thawed")
        pair.write_blocks("server5", [42], b"fenced")
        assert pair.read_block("server5", 42).startswith(b"fenced-42-")
        return
    pair.wait_status("server5", lambda s: "exit 1" in (s["io_suspended"] or ""), 20,
                     "writes suspended after the failed fence")
    assert "suspended:fencing" in pair.vigil("server5", "status", pair.name).stdout
    done = pair.lab.directory / "written"
    writer = pair.host("server5").spawn(
        ["sh", "-c", "dd if=/dev/zero of=/dev/drbd1 bs=4096 count=1 seek=77 oflag=direct "
                     f"status=none && touch {done}"], name="writer")
    wait_until(lambda: _blocked_in_io(writer.pid), 20,
               lambda: f"the write waits in the device ({_waits(writer.pid)}, "
                       f"written: {done.exists()})")
    assert not done.exists(), "a write went through while the fence was unresolved"
    assert pair.status("server5")["io_suspended"]
    out = pair.vigil("server5", "resume-io", pair.name).stdout
    assert "I/O resumed" in out
    wait_until(done.exists, 20, "the write completed after resume-io")
    assert pair.status("server5")["io_suspended"] is None


def test_a_fence_that_fails_after_the_peer_came_back_leaves_writes_flowing(volume_pair):
    """The link flaps: the peer is back before the fence-peer handler fails.

    The failed fence belongs to a link loss that is over; writes must not stay (or
    become) frozen, and the status must not claim a suspension that is not there.
    """
    pair = volume_pair
    ran, release = pair.lab.directory / "fence-ran", pair.lab.directory / "fence-release"
    for host in ("server5", "server6"):
        pair.host(host).write_file(
            "/etc/vigil-test/fence-peer",
            f"#!/bin/sh\ntouch {ran}\nwhile [ ! -e {release} ]; do sleep 0.05; done\nexit 1\n",
            mode=0o755)
    pair.start_pair(disk="fencing resource-and-stonith;",
                    handlers="fence-peer /etc/vigil-test/fence-peer;")
    pair.lab.partition("server5", "server6")
    wait_until(ran.exists, 20, "the fence-peer handler ran")
    assert pair.status("server5")["io_suspended"] == "fencing the peer", pair.log_tail("server5")
    pair.lab.heal("server5", "server6")
    pair.wait_status("server5", lambda s: s["connection"] == "Connected"
                     and s["io_suspended"] is None, 30, "reconnected, writes thawed")
    release.touch()
    status = pair.wait_status("server5", lambda s: s["last_fence"] is not None, 20,
                              "the fence-peer handler finished")
    assert status["last_fence"]["exit"] == 1
    assert "connected again" in status["last_fence"]["result"]
    assert status["io_suspended"] is None
    pair.write_blocks("server5", [43], b"after-flap")
    assert pair.read_block("server5", 43).startswith(b"after-flap-43-")
    pair.wait_synced()
    assert pair.read_block("server6", 43).startswith(b"after-flap-43-")


@pytest.mark.parametrize("handler, promoted", [("exit 4", True), ("exit 1", False)])
def test_promoting_a_consistent_disk_asks_fence_peer_first(volume_pair, handler, promoted):
    """After a restart without its peer the disk is only Consistent: with fencing, the
    promotion runs fence-peer and goes on only if the handler outdated the peer."""
    pair = volume_pair
    ran = pair.lab.directory / "fence-ran"
    for host in ("server5", "server6"):
        pair.host(host).write_file("/etc/vigil-test/fence-peer",
                                   f"#!/bin/sh\ntouch {ran}\n{handler}\n", mode=0o755)
    pair.start_pair(disk="fencing resource-only;",
                    handlers="fence-peer /etc/vigil-test/fence-peer;")
    pair.vigil("server5", "secondary", pair.name)
    pair.lab.partition("server5", "server6")
    pair.vigil("server6", "down", pair.name)
    pair.up("server6")
    assert pair.status("server6")["disk"] == "Consistent"
    ran.unlink(missing_ok=True)
    done = pair.vigil("server6", "primary", pair.name, check=False)
    assert ran.exists(), "fence-peer did not run before the promotion"
    status = pair.status("server6")
    assert status["last_fence"]["exit"] == int(handler.split()[1])
    if promoted:
        assert done.returncode == 0, done.stderr
        assert status["role"] == "Primary" and status["peer_disk"] == "Outdated"
    else:
        assert done.returncode != 0
        assert "fence-peer did not outdate the peer" in done.stderr
        assert status["role"] == "Secondary"


def test_adjust_runs_what_the_changed_resource_file_says(volume_pair):
    """Fencing and a handler at once; the protocol by reconnecting; the disk refused."""
    pair = volume_pair
    marker = pair.lab.directory / "fenced-after-adjust"
    for host in ("server5", "server6"):
        pair.host(host).write_file("/etc/vigil-test/fence-peer",
                                   f"#!/bin/sh\ntouch {marker}\nexit 4\n", mode=0o755)
    pair.start_pair()
    assert pair.vigil("server5", "adjust", pair.name).stdout.strip() == \
        f"{pair.name}: no changes"
    for host in ("server5", "server6"):
        pair.configure(host, protocol="A", disk="fencing resource-only;",
                       handlers="fence-peer /etc/vigil-test/fence-peer;")
    said = pair.vigil("server5", "adjust", pair.name).stdout
    assert "reconnecting" in said and "fencing: 'dont-care' -> 'resource-only'" in said
    assert "protocol: 'C' -> 'A'" in said
    # server6 still spoke protocol C when server5 came back with A: both refused the
    # link (StandAlone); adjusting server6, then server5 again, connects them
    pair.vigil("server6", "adjust", pair.name)
    pair.vigil("server5", "adjust", pair.name)
    status = pair.wait_status("server5", lambda s: s["connection"] == "Connected"
                              and s["protocol"] == "A", 30, "reconnected with protocol A")
    assert status["role"] == "Primary"
    pair.lab.partition("server5", "server6")  # the adjusted fencing is what runs now
    pair.wait_status("server5", lambda s: s["peer_disk"] == "Outdated", 20,
                     "fence-peer outdated the peer")
    assert marker.exists()
    pair.configure("server5", protocol="A", disk="fencing resource-only;",
                   handlers="fence-peer /etc/vigil-test/fence-peer;",
                   text=None)
    text = pair.host("server5").read_file(f"/etc/drbd.d/{pair.name}.res")
    pair.host("server5").write_file(f"/etc/drbd.d/{pair.name}.res",
                                    text.replace(pair.backing, pair.backing + ".new", 1))
    refused = pair.vigil("server5", "adjust", pair.name, check=False)
    assert refused.returncode != 0
    assert "only down and up can change local.disk" in refused.stderr
    assert pair.status("server5")["role"] == "Primary"
