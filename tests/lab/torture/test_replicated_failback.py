"""The replicated campaign's power-off: the home node boots while the survivor serves.

Seed 2 of `vigil torture --setup replicated` measured 10 s to 16 s client outages
after a short power-off of the active node. Two causes, each fixed: the survivor's
promotion waited for ping-int (10 s) before it judged its dead primary gone, and
with auto_failback on the survivor gave the group back as soon as the home node
booted, though the home node's disk was still a resync target and could not be
promoted (six tries, then back to the survivor). Now the survivor serves within a
few seconds of the crash, keeps serving while the home node resyncs, and the group
goes home only once the home node could start it.

How long the home node's resync takes is the crashed primary's activity-log
extents (a few 4 MiB extents MariaDB was writing) at c-min-rate, the rate a
resync keeps while the application writes. DRBD's default (250 KiB/s) makes that
15 s to well over 100 s; the test sets 1 MiB/s, still long enough (at least one
4 MiB extent) for the home node to be a resync target when it first could take
the group back. The wait for the group to go home is derived from the bytes the
survivor found out of sync.
"""

from __future__ import annotations

import threading
import time

import pytest

from vigil.config.drbd import DiskOptions
from vigil.demo.replication_scene import answers, volume_status
from vigil.lab import Lab, seed_topology
from vigil.torture.campaign import START_DEADLINE, wait_settled
from vigil.torture.replicated_setup import RESYNC_RATES, ReplicatedSetup

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

#: bytes per second a resync keeps while MariaDB writes: slow enough that the resync
#: outlasts the home node's boot, four times DRBD's default to keep the test short
MIN_RATE = 4 * DiskOptions().c_min_rate


def resync_bytes(survivor, until: float) -> int:
    """The bytes the survivor has to send the booted home node, once it knows: the
    largest out-of-sync figure seen while it connects and its resync starts."""
    largest = 0
    while time.monotonic() < until:
        status = volume_status(survivor)
        largest = max(largest, int(status.get("out_of_sync") or 0))
        if status.get("replication") in ("SyncSource", "Established"):
            return largest
        time.sleep(0.2)
    return largest


def test_the_survivor_serves_until_the_booted_home_node_is_in_sync():
    lab = Lab(seed_topology())
    setup = ReplicatedSetup(lab)
    # the campaign's rates but c-min-rate: the resync outlasts the boot
    setup.resync_rates = RESYNC_RATES.replace("c-min-rate 32M", f"c-min-rate {MIN_RATE // 1024}K")
    seen: list[tuple[float, bool]] = []
    stop = threading.Event()
    try:
        lab.up()
        setup.start()
        origin = time.monotonic()
        assert wait_settled(setup, origin, origin + START_DEADLINE, setup.home) is not None
        client, vip = lab.host("client"), setup.pair.vip

        def poll() -> None:
            while not stop.is_set():
                seen.append((time.monotonic(), answers(client, vip)))
                stop.wait(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        crashed = time.monotonic()
        lab.crash("server5")
        poller.start()
        deadline = crashed + 30
        while not any(ok and at > crashed for at, ok in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        served = next(at for at, ok in seen if ok and at > crashed) - crashed
        assert served < 8, f"server6 served only {served:.1f} s after the crash"
        lab.boot("server5")
        setup.after_boot("server5")  # vigil volume up, then vigil heartbeat
        home_log = setup.pair.daemons["server5"]
        booted = time.monotonic()
        to_send = resync_bytes(lab.host("server6"), booted + 60)
        allowed = 60 + 1.5 * to_send / MIN_RATE
        assert allowed < 600, f"{to_send} bytes to resync: more than the activity log holds?"
        deadline = booted + allowed
        while setup.holder() != "server5" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert setup.holder() == "server5", (
            f"the group did not go home once in sync ({to_send} bytes to resync at "
            f"{MIN_RATE} bytes/s, waited {allowed:.0f} s)")
        home = time.monotonic()
        print(f"served {served:.1f} s after the crash; {to_send} bytes to resync; home "
              f"{home - booted:.1f} s after the boot")
        while time.monotonic() < home + 10 and not any(ok and at > home for at, ok in seen):
            time.sleep(0.1)
        stop.set()
        poller.join(5)
        after = [(at, ok) for at, ok in seen if at > crashed + served]
        gaps, down_since = [], None
        for at, ok in after:
            if not ok and down_since is None:
                down_since = at
            elif ok and down_since is not None:
                gaps.append(at - down_since)
                down_since = None
        assert down_since is None, "not served at the end"
        assert max(gaps, default=0) < 5, f"outages after the takeover: {gaps}"
        assert "cannot start here yet" in home_log.output()
        assert "failed after 6 tries" not in home_log.output()
    finally:
        stop.set()
        try:
            setup.stop()
        finally:
            lab.down()
