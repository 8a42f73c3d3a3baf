"""A volume daemon's /metrics in the lab: the primary dies, the secondary takes over."""

from __future__ import annotations

import pytest

from vigil.testing import wait_until
from vigil.testing.metrics import sample, scrape

pytestmark = pytest.mark.lab

BASE = 9700
PORT = BASE + 1  # the resource's device is /dev/drbd1


def test_role_connection_and_replication_figures_follow_a_failover(volume_pair):
    pair = volume_pair
    for host in ("server5", "server6"):
        pair.configure(host)
        pair.create(host)
        pair.up(host, "--metrics-address", str(BASE))
    pair.wait_status("server5", lambda s: s["connection"] == "Connected", 30, "connected")
    pair.vigil("server5", "primary", "--force", pair.name)
    pair.wait_synced()
    server5, server6 = pair.host("server5"), pair.host("server6")

    def on(host):
        return lambda: scrape(host, PORT)

    def has(host, name, **labels):
        return sample(scrape(host, PORT), name, resource="r0", **labels) == 1

    wait_until(lambda: has(server5, "vigil_volume_role", role="Primary"), 10,
               lambda: f"server5 primary in its metrics\n{on(server5)()}")
    pair.write_blocks("server5", [0, 1, 2, 3], b"metrics")
    text = on(server5)()
    assert sample(text, "vigil_volume_up") == 1
    assert sample(text, "vigil_volume_connection_state", resource="r0", state="Connected") == 1
    assert sample(text, "vigil_volume_disk_state", resource="r0", state="UpToDate") == 1
    assert sample(text, "vigil_volume_out_of_sync_bytes", resource="r0") == 0
    assert sample(text, "vigil_volume_replication_latency_seconds_count", resource="r0") >= 4
    assert sample(text, "vigil_volume_network_sent_bytes_total", resource="r0") >= 4 * 4096
    assert sample(text, "vigil_volume_split_brain", resource="r0") == 0
    text = on(server6)()
    assert sample(text, "vigil_volume_role", resource="r0", role="Secondary") == 1
    assert sample(text, "vigil_volume_peer_role", resource="r0", role="Primary") == 1
    assert sample(text, "vigil_volume_network_received_bytes_total", resource="r0") >= 4 * 4096

    # The primary's daemon dies; the secondary notices and is promoted.
    server5.run(["kill", "-KILL", str(pair.daemon_pid("server5"))])
    wait_until(lambda: has(server6, "vigil_volume_connection_state", state="Connecting"), 15,
               lambda: f"server6 no longer connected in its metrics\n{on(server6)()}")
    pair.vigil("server6", "primary", pair.name)
    wait_until(lambda: has(server6, "vigil_volume_role", role="Primary"), 10,
               lambda: f"server6 primary in its metrics\n{on(server6)()}")
    pair.write_blocks("server6", [5], b"after")
    text = on(server6)()
    assert sample(text, "vigil_volume_out_of_sync_bytes", resource="r0") >= 4096
    assert sample(text, "vigil_volume_resync_done_ratio", resource="r0") == 0
    assert sample(text, "vigil_volume_connection_state", resource="r0",
                  state="Connected") is None  # a state metric has only the current one
    assert sample(text, "vigil_volume_peer_role", resource="r0", role="Unknown") == 1
    assert scrape(server5, PORT) is None  # gone with its daemon
