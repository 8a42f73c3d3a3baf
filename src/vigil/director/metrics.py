"""`vigil director`'s metrics: the table, the checks and the traffic, at scrape time.

The forwarding table and its counters are read from the backend as
`vigil director status` reads them, and the check states from the health
policy's snapshot, both on the director's own loop (one coroutine per
scrape, with a timeout). Per real server figures carry node_exporter's ipvs
collector names and labels (`node_ipvs_backend_weight`, ...), so dashboards
made for IPVS work on the nftables and userspace data paths too. Check
latency and results are counted as checks finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vigil.director.backends.base import ServiceStats
from vigil.director.checkers.base import CheckResult
from vigil.director.engine import CheckTarget
from vigil.lvs.table import Protocol, ServiceKey, Table
from vigil.metrics import SnapshotCollector

#: node_exporter's ipvs backend labels, in its order
IPVS_LABELS = ["local_address", "local_port", "local_mark", "proxy", "remote_address",
               "remote_port"]
CHECK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def ipvs_labels(key: ServiceKey, address: str, port: int) -> list[str]:
    """node_exporter's labels of one real server of one virtual service."""
    if key.protocol is Protocol.FWM:
        return ["", "0", str(key.fwmark), "FWM", address, str(port)]
    return [key.address, str(key.port), "", key.protocol.value.upper(), address, str(port)]


class DirectorMetrics:
    """The director's registry: snapshot collector + check counters."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]],
                 registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.checks = Counter("vigil_director_checks", "Health checks of real servers, by result",
                              ["real", "check", "result"], registry=self.registry)
        self.check_seconds = Histogram("vigil_director_check_duration_seconds",
                                       "How long a health check took, by real server and type",
                                       ["real", "check"], buckets=CHECK_BUCKETS,
                                       registry=self.registry)
        self.registry.register(SnapshotCollector(
            snapshot, build_director, "vigil_director_up",
            "1 when the director daemon answered this scrape"))

    def check_done(self, target: CheckTarget, result: CheckResult, seconds: float) -> None:
        real = str(target.real.key)
        check = target.config.check.checktype
        self.checks.labels(real, check, "ok" if result.ok else "failed").inc()
        self.check_seconds.labels(real, check).observe(max(0.0, seconds))


def build_director(snapshot: dict[str, Any]) -> Iterator[Metric]:
    """Metric families from the director's snapshot: `table` (the data path's `Table`),
    `stats` (`ServiceKey` -> `ServiceStats`), `health` (the policy's rows) and plain facts."""
    info = GaugeMetricFamily("vigil_director_info", "The director: config file, data path, phase",
                             labels=["config", "backend", "phase"])
    info.add_metric([str(snapshot.get("config") or ""), str(snapshot.get("backend", "")),
                     str(snapshot.get("phase", ""))], 1)
    yield info
    announce = snapshot.get("announce")
    if announce:
        vips = GaugeMetricFamily(
            "vigil_director_vip_announced",
            "1 while the director announces the VIP to its routers (--announce); the cause "
            "says why it is announced (serving) or withdrawn", labels=["vip", "speaker", "cause"])
        for row in announce["vips"]:
            vips.add_metric([str(row["prefix"]), str(announce["speaker"]), str(row["cause"])],
                            1 if row["announced"] else 0)
        yield vips
        yield GaugeMetricFamily("vigil_director_draining",
                                "1 while the director is drained (`vigil director drain`)",
                                value=1 if announce["draining"] else 0)
    if "active" in snapshot:
        yield GaugeMetricFamily("vigil_director_active",
                                "1: the active director; 0: a warm standby (same checks and "
                                "table, forwarding only what is addressed to this host)",
                                value=1 if snapshot["active"] else 0)
    yield CounterMetricFamily("vigil_director_table_syncs",
                              "Changes of the forwarding table applied to the data path",
                              value=snapshot.get("syncs", 0))
    table: Table = snapshot.get("table") or Table()
    stats: dict[ServiceKey, ServiceStats] = snapshot.get("stats") or {}
    health = {(row["service"], row["real"]): row for row in snapshot.get("health", [])}

    services = GaugeMetricFamily(
        "vigil_director_virtual_service_info", "A virtual service in the forwarding table",
        labels=["service", "protocol", "address", "port", "fwmark", "scheduler"])
    reals = GaugeMetricFamily("vigil_director_virtual_service_real_servers",
                              "Real servers in the table of a virtual service, by whether their "
                              "weight is above 0", labels=["service", "weighted"])
    fallback = GaugeMetricFamily("vigil_director_fallback_active",
                                 "1 while the service's fallback server stands in",
                                 labels=["service"])
    weight = GaugeMetricFamily("node_ipvs_backend_weight", "The current backend weight.",
                               labels=IPVS_LABELS)
    active = GaugeMetricFamily("node_ipvs_backend_connections_active",
                               "The current active connections by local and remote address.",
                               labels=IPVS_LABELS)
    inactive = GaugeMetricFamily("node_ipvs_backend_connections_inactive",
                                 "The current inactive connections by local and remote address.",
                                 labels=IPVS_LABELS)
    r_conns = CounterMetricFamily("vigil_director_real_server_connections",
                                  "Connections forwarded to the real server", labels=IPVS_LABELS)
    r_packets = CounterMetricFamily("vigil_director_real_server_packets",
                                    "Packets to (in) and from (out) the real server",
                                    labels=[*IPVS_LABELS, "direction"])
    r_bytes = CounterMetricFamily("vigil_director_real_server_bytes",
                                  "Bytes to (in) and from (out) the real server",
                                  labels=[*IPVS_LABELS, "direction"])
    up = GaugeMetricFamily("vigil_director_real_server_up",
                           "1 while the real server's check passes", labels=["service", "real"])
    state = GaugeMetricFamily("vigil_director_real_server_state",
                              "The real server's check state (1 for the current one)",
                              labels=["service", "real", "state"])
    failures = GaugeMetricFamily("vigil_director_real_server_check_failures",
                                 "Consecutive failed checks of the real server",
                                 labels=["service", "real"])
    maintenance = GaugeMetricFamily("vigil_director_real_server_maintenance",
                                    "1 while the real server is in maintenance",
                                    labels=["service", "real"])
    for service in table:
        key = service.key
        name = key.label
        services.add_metric([name, key.protocol.value, key.address, str(key.port),
                             str(key.fwmark), service.scheduler], 1)
        weighted = sum(1 for r in service.reals if r.weight > 0)
        reals.add_metric([name, "yes"], weighted)
        reals.add_metric([name, "no"], len(service.reals) - weighted)
        service_stats = stats.get(key)
        for real in service.reals:
            labels = ipvs_labels(key, real.address, real.port)
            weight.add_metric(labels, real.weight)
            real_stats = service_stats.reals.get(real.key) if service_stats else None
            if real_stats is not None:
                active.add_metric(labels, real_stats.active)
                inactive.add_metric(labels, real_stats.inactive)
                counters = real_stats.counters
                r_conns.add_metric(labels, counters.conns)
                r_packets.add_metric([*labels, "in"], counters.in_packets)
                r_packets.add_metric([*labels, "out"], counters.out_packets)
                r_bytes.add_metric([*labels, "in"], counters.in_bytes)
                r_bytes.add_metric([*labels, "out"], counters.out_bytes)
    for (service_name, real_name), row in sorted(health.items()):
        label = _service_label(service_name, table)
        up.add_metric([label, real_name], 1 if row["state"] == "up" else 0)
        state.add_metric([label, real_name, str(row["state"])], 1)
        failures.add_metric([label, real_name], row.get("failures", 0))
        maintenance.add_metric([label, real_name], 1 if row.get("maintenance") else 0)
    seen: set[str] = set()
    for row in snapshot.get("health", []):
        label = _service_label(row["service"], table)
        if label not in seen:
            seen.add(label)
            fallback.add_metric([label], 1 if row.get("fallback_active") else 0)
    yield from (services, reals, fallback, weight, active, inactive, r_conns, r_packets,
                r_bytes, up, state, failures, maintenance)

    totals = [0, 0, 0, 0, 0]
    for service_stats in stats.values():
        c = service_stats.counters
        for i, value in enumerate((c.conns, c.in_packets, c.out_packets, c.in_bytes,
                                   c.out_bytes)):
            totals[i] += value
    for (name, text), value in zip(
            (("node_ipvs_connections", "The total number of connections made."),
             ("node_ipvs_incoming_packets", "The total number of incoming packets."),
             ("node_ipvs_outgoing_packets", "The total number of outgoing packets."),
             ("node_ipvs_incoming_bytes", "The total amount of incoming data."),
             ("node_ipvs_outgoing_bytes", "The total amount of outgoing data.")),
            totals, strict=True):
        yield CounterMetricFamily(name, text, value=value)


def _service_label(text: str, table: Table) -> str:
    """The health rows name a service as `str(ServiceKey)`; metrics use its compact label."""
    for service in table:
        if str(service.key) == text:
            return service.key.label
    return " ".join(text.split()).replace(" ", ":").lower()


__all__ = ["CHECK_BUCKETS", "IPVS_LABELS", "DirectorMetrics", "build_director", "ipvs_labels"]
