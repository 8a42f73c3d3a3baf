"""A volume daemon's metrics: `vigil volume status` of its resource, at scrape time.

The names follow Prometheus conventions under `vigil_volume_`; their meaning
mirrors prometheus-hacluster-exporter's `ha_cluster_drbd_*` (a state as a
labelled 1, DRBD's ns/nr/dw/dr/al/bm counters, the split-brain flag), in
bytes and seconds rather than KiB and percent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from vigil.metrics import MetricsAddress, SnapshotCollector
from vigil.replication.geometry import BLOCK_SIZE

#: DRBD's counters in `status["stats"]`: (key, metric, help)
COUNTERS = (
    ("ns", "vigil_volume_network_sent_bytes", "Bytes sent to the peer (DRBD ns)"),
    ("nr", "vigil_volume_network_received_bytes", "Bytes received from the peer (DRBD nr)"),
    ("dw", "vigil_volume_disk_written_bytes", "Bytes written to the local disk (DRBD dw)"),
    ("dr", "vigil_volume_disk_read_bytes", "Bytes read from the local disk (DRBD dr)"),
    ("al", "vigil_volume_activity_log_writes", "Activity log updates (DRBD al)"),
    ("bm", "vigil_volume_bitmap_writes", "Bitmap updates written to the metadata (DRBD bm)"),
    ("writes", "vigil_volume_writes", "Write requests from the device's users"),
    ("resync_blocks", "vigil_volume_resync_blocks", "4 KiB blocks brought in sync by resyncs"),
    ("resync_same_blocks", "vigil_volume_resync_same_blocks",
     "Resync blocks csums-alg found the same on both nodes (not sent)"),
    ("integrity_failures", "vigil_volume_integrity_failures",
     "Replicated blocks that failed the data-integrity-alg check"),
    ("split_brains", "vigil_volume_split_brains", "Split brains detected at a connect"),
    ("verifies", "vigil_volume_verifies", "Online verifies finished on this node"),
)


def metrics_address_for(base: MetricsAddress, device: str) -> MetricsAddress:
    """One daemon per resource: /dev/drbdN serves on the base port + N."""
    m = re.search(r"(\d+)$", device)
    return base.shifted(int(m.group(1)) if m else 0)


class VolumeMetrics:
    """One resource's registry: a collector over its status."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]],
                 registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.registry.register(SnapshotCollector(
            snapshot, build_volume, "vigil_volume_up",
            "1 when the volume daemon answered this scrape"))


def _state(name: str, text: str, resource: str, label: str, value: object) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=["resource", label])
    family.add_metric([resource, str(value)], 1)
    return family


def build_volume(status: dict[str, Any]) -> Iterator[Metric]:
    """Metric families from one resource's `vigil volume status --json`."""
    r = str(status.get("name", ""))
    info = GaugeMetricFamily("vigil_volume_info", "A replicated volume: device, protocol, host",
                             labels=["resource", "device", "protocol", "host"])
    info.add_metric([r, str(status.get("device") or ""), str(status.get("protocol", "")),
                     str(status.get("host", ""))], 1)
    yield info
    yield _state("vigil_volume_role", "This node's role (1 for the current one)", r, "role",
                 status.get("role"))
    yield _state("vigil_volume_peer_role", "The peer's role as last known", r, "role",
                 status.get("peer_role"))
    yield _state("vigil_volume_disk_state", "The local disk's state", r, "state",
                 status.get("disk"))
    yield _state("vigil_volume_peer_disk_state", "The peer's disk state as last known", r,
                 "state", status.get("peer_disk"))
    yield _state("vigil_volume_connection_state", "The connection to the peer", r, "state",
                 status.get("connection"))
    yield _state("vigil_volume_replication_state", "Replication: Established, SyncSource, ...",
                 r, "state", status.get("replication"))
    size = GaugeMetricFamily("vigil_volume_size_bytes", "Usable size of the device",
                             labels=["resource"])
    size.add_metric([r], status.get("size", 0))
    yield size
    oos = GaugeMetricFamily("vigil_volume_out_of_sync_bytes",
                            "Bytes marked out of sync with the peer (to be resynced)",
                            labels=["resource"])
    oos.add_metric([r], status.get("out_of_sync", 0))
    yield oos
    sync = status.get("sync") or {}
    rate = GaugeMetricFamily("vigil_volume_resync_rate_bytes_per_second",
                             "Average rate of the resync in progress (0 when none)",
                             labels=["resource"])
    rate.add_metric([r], float(sync.get("rate", 0.0)))
    yield rate
    done = GaugeMetricFamily("vigil_volume_resync_done_ratio",
                             "Share of the resync in progress done (1 when in sync)",
                             labels=["resource"])
    done.add_metric([r], float(sync["percent"]) / 100 if "percent" in sync else
                    (1.0 if status.get("out_of_sync", 0) == 0 else 0.0))
    yield done
    unflushed = GaugeMetricFamily("vigil_volume_peer_unflushed_writes",
                                  "Writes the peer acknowledged that no flush of its disk "
                                  "covers yet", labels=["resource"])
    unflushed.add_metric([r], status.get("peer_unflushed", 0))
    yield unflushed
    stats = status.get("stats") or {}
    for key, name, text in COUNTERS:
        family = CounterMetricFamily(name, text, labels=["resource"])
        family.add_metric([r], stats.get(key, 0))
        yield family
    latency = SummaryMetricFamily("vigil_volume_replication_latency_seconds",
                                  "From sending a replicated write to the peer's "
                                  "acknowledgement of it", labels=["resource"])
    latency.add_metric([r], count_value=stats.get("acked_writes", 0),
                       sum_value=stats.get("ack_wait_us", 0) / 1e6)
    yield latency
    split = GaugeMetricFamily("vigil_volume_split_brain",
                              "1 while a split brain found at the last connect stands "
                              "(ha_cluster_drbd_split_brain)", labels=["resource"])
    split.add_metric([r], 1 if status.get("split_brain") else 0)
    yield split
    suspended = GaugeMetricFamily("vigil_volume_io_suspended",
                                  "1 while writes are held (DRBD's suspended:fencing: "
                                  "fencing resource-and-stonith waits for the fence-peer "
                                  "handler)", labels=["resource"])
    suspended.add_metric([r], 1 if status.get("io_suspended") else 0)
    yield suspended
    verify = status.get("verify") or {}
    running = GaugeMetricFamily("vigil_volume_verify_running", "1 while an online verify runs",
                                labels=["resource"])
    running.add_metric([r], 1 if verify.get("running") else 0)
    yield running
    if verify:
        found = GaugeMetricFamily("vigil_volume_verify_out_of_sync_bytes",
                                  "Bytes the last (or current) online verify found different",
                                  labels=["resource"])
        found.add_metric([r], int(verify.get("out_of_sync", 0)) * BLOCK_SIZE)
        yield found
        total = max(1, int(verify.get("total_blocks", 0)))
        progress = GaugeMetricFamily("vigil_volume_verify_done_ratio",
                                     "Share of the device the last (or current) verify "
                                     "compared", labels=["resource"])
        progress.add_metric([r], min(1.0, int(verify.get("done_blocks", 0)) / total))
        yield progress


__all__ = ["COUNTERS", "VolumeMetrics", "build_volume", "metrics_address_for"]
