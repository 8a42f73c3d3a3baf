"""A volume daemon's metrics: `vigil volume status` in, vigil_volume_* out."""

from __future__ import annotations

from vigil.metrics import exposition, parse_address
from vigil.replication.metrics import VolumeMetrics, metrics_address_for


def status(**changes) -> dict:
    base = {"name": "r0", "host": "server5", "role": "Primary", "peer_role": "Secondary",
            "connection": "Connected", "replication": "SyncSource", "disk": "UpToDate",
            "peer_disk": "Inconsistent", "protocol": "C", "size": 1 << 30,
            "out_of_sync": 1 << 20, "peer_unflushed": 2, "split_brain": "",
            "device": "/dev/drbd0",
            "stats": {"ns": 4096, "nr": 0, "dw": 8192, "dr": 0, "al": 3, "bm": 1, "writes": 2,
                      "resync_blocks": 10, "resync_messages": 1, "acked_writes": 4,
                      "ack_wait_us": 2000, "split_brains": 1, "verifies": 0},
            "sync": {"percent": 25.0, "total_bytes": 4 << 20, "left_bytes": 3 << 20,
                     "rate": 1048576.0, "eta": 3.0}}
    base.update(changes)
    return base


def scrape(data: dict) -> str:
    return exposition(VolumeMetrics(lambda: data).registry)


def test_states_sizes_and_counters():
    text = scrape(status())
    assert 'vigil_volume_role{resource="r0",role="Primary"} 1.0' in text
    assert 'vigil_volume_peer_disk_state{resource="r0",state="Inconsistent"} 1.0' in text
    assert 'vigil_volume_connection_state{resource="r0",state="Connected"} 1.0' in text
    assert 'vigil_volume_replication_state{resource="r0",state="SyncSource"} 1.0' in text
    assert 'vigil_volume_out_of_sync_bytes{resource="r0"} 1.048576e+06' in text
    assert 'vigil_volume_resync_rate_bytes_per_second{resource="r0"} 1.048576e+06' in text
    assert 'vigil_volume_resync_done_ratio{resource="r0"} 0.25' in text
    assert 'vigil_volume_network_sent_bytes_total{resource="r0"} 4096.0' in text
    assert 'vigil_volume_split_brains_total{resource="r0"} 1.0' in text
    assert 'vigil_volume_replication_latency_seconds_count{resource="r0"} 4.0' in text
    assert 'vigil_volume_replication_latency_seconds_sum{resource="r0"} 0.002' in text
    assert 'vigil_volume_split_brain{resource="r0"} 0.0' in text
    assert 'vigil_volume_io_suspended{resource="r0"} 0.0' in text
    assert 'vigil_volume_info{device="/dev/drbd0",host="server5",protocol="C",resource="r0"}' \
        in text


def test_a_standalone_secondary_in_split_brain_with_a_verify_result():
    text = scrape(status(role="Secondary", connection="StandAlone", replication="Off",
                         io_suspended="fencing: the fence-peer handler runs",
                         out_of_sync=0, sync=None, split_brain="split brain: both primary",
                         verify={"running": False, "total_blocks": 100, "done_blocks": 100,
                                 "out_of_sync": 2}))
    assert 'vigil_volume_role{resource="r0",role="Secondary"} 1.0' in text
    assert 'vigil_volume_connection_state{resource="r0",state="StandAlone"} 1.0' in text
    assert 'vigil_volume_resync_done_ratio{resource="r0"} 1.0' in text
    assert 'vigil_volume_resync_rate_bytes_per_second{resource="r0"} 0.0' in text
    assert 'vigil_volume_split_brain{resource="r0"} 1.0' in text
    assert 'vigil_volume_io_suspended{resource="r0"} 1.0' in text
    assert 'vigil_volume_verify_out_of_sync_bytes{resource="r0"} 8192.0' in text
    assert 'vigil_volume_verify_done_ratio{resource="r0"} 1.0' in text
    assert 'vigil_volume_verify_running{resource="r0"} 0.0' in text


def test_each_resource_serves_on_the_base_port_plus_its_minor():
    base = parse_address("9696")
    assert str(metrics_address_for(base, "/dev/drbd0")) == "127.0.0.1:9696"
    assert str(metrics_address_for(base, "/dev/drbd3")) == "127.0.0.1:9699"
