"""`vigil heartbeat`'s metrics: a collector over the engine's status, counters at events.

Everything `vigil status --json` already shows (nodes, links, groups, packets
rejected by reason) is read from that snapshot at scrape time. What is not
kept anywhere (late heartbeats, failovers with their cause and duration,
fence attempts, monitor verdicts and restarts) is counted where it happens:
late heartbeats and the cause of a takeover in the heartbeat thread, action
results on the main loop, monitor verdicts in the monitor tasks. Counters
from prometheus-client are thread-safe; the small table of takeovers in
progress has its own lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vigil import __version__
from vigil.ha.decision import Cause, Fence, StartGroup, StopGroup
from vigil.metrics import SnapshotCollector

#: failover durations: from the decision to the group running here
FAILOVER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def cause_label(why: object) -> str:
    """A takeover's cause as a stable label: the `Cause` member's name (`peer_dead`),
    not its log wording, which may change."""
    if isinstance(why, Cause):
        return why.name.lower()
    try:
        return Cause(str(why)).name.lower()
    except ValueError:
        return "unknown" if not why else str(why).replace(" ", "_").lower()


class HeartbeatMetrics:
    """The heartbeat daemon's registry: snapshot collector + event counters."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]],
                 registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.failovers = Counter(
            "vigil_ha_failovers", "Groups this node started (took over), by cause and result",
            ["group", "cause", "result"], registry=r)
        self.failover_seconds = Histogram(
            "vigil_ha_failover_duration_seconds",
            "From the decision to take a group to the group running here",
            ["cause"], buckets=FAILOVER_BUCKETS, registry=r)
        self.stops = Counter("vigil_ha_group_stops", "Groups this node stopped, by result",
                             ["group", "result"], registry=r)
        self.late = Counter("vigil_ha_late_heartbeats",
                            "Heartbeats that came later than warntime after the previous one",
                            ["node"], registry=r)
        self.fences = Counter("vigil_ha_fence_attempts",
                              "Attempts to fence a node, by result (every agent and command)",
                              ["node", "result"], registry=r)
        self.monitors = Counter(
            "vigil_ha_resource_monitor_results",
            "Monitor operations of resources running here, by verdict (healthy, ignored, "
            "restart, fail-group)", ["group", "resource", "verdict"], registry=r)
        self.restarts = Counter("vigil_ha_resource_restarts",
                                "In-place restarts of a failed resource, by result",
                                ["group", "resource", "result"], registry=r)
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, float]] = {}
        r.register(SnapshotCollector(snapshot, build_heartbeat, "vigil_ha_up",
                                     "1 when the heartbeat daemon answered this scrape"))

    # -- in the heartbeat thread ------------------------------------------------------------
    def engine_output(self, out: Any, why: Callable[[int], object], now: float) -> None:
        """What the engine just returned: late heartbeats, takeovers being decided."""
        for line in out.logs:
            if line.event == "heartbeat.late":
                self.late.labels(str(line.fields.get("node", ""))).inc()
        for action in out.actions:
            if isinstance(action, StartGroup):
                with self._lock:
                    self._pending[action.group.index] = (cause_label(why(action.group.index)),
                                                         now)

    # -- on the main loop -------------------------------------------------------------------
    def action_done(self, action: object, ok: bool, now: float,
                    cancelled: bool = False) -> None:
        result = "ok" if ok else "cancelled" if cancelled else "failed"
        if isinstance(action, StartGroup):
            with self._lock:
                cause, decided = self._pending.pop(action.group.index, ("unknown", now))
            self.failovers.labels(action.group.key, cause, result).inc()
            if ok:
                self.failover_seconds.labels(cause).observe(max(0.0, now - decided))
        elif isinstance(action, StopGroup):
            self.stops.labels(action.group.key, result).inc()
        elif isinstance(action, Fence):
            self.fences.labels(action.node, result).inc()

    # -- in monitor tasks -------------------------------------------------------------------
    def monitor_verdict(self, group: str, resource: str, verdict: str) -> None:
        self.monitors.labels(group, resource, verdict).inc()

    def restarted(self, group: str, resource: str, ok: bool) -> None:
        self.restarts.labels(group, resource, "ok" if ok else "failed").inc()


def _age(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def build_heartbeat(status: dict[str, Any]) -> Iterator[Metric]:
    """Metric families from the engine's status (`vigil status --json`'s `status`)."""
    me = str(status.get("node", ""))
    info = GaugeMetricFamily("vigil_ha_info", "The heartbeat daemon: node name, version, phase",
                             labels=["node", "version", "phase", "driver"])
    daemon = status.get("daemon", {})
    info.add_metric([me, str(daemon.get("version", __version__)), str(status.get("phase", "")),
                     str(daemon.get("driver", ""))], 1)
    yield info
    yield GaugeMetricFamily("vigil_ha_comm_up", "1 once cluster communication is up",
                            value=1 if status.get("comm_up") else 0)
    timings = status.get("timings", {})
    deadtime = GaugeMetricFamily("vigil_ha_timing_seconds", "ha.cf timings in force",
                                 labels=["timing"])
    for name in ("keepalive", "warntime", "deadtime", "initdead", "deadping"):
        if isinstance(timings.get(name), int | float):
            deadtime.add_metric([name], float(timings[name]))
    yield deadtime

    node_up = GaugeMetricFamily("vigil_ha_node_up", "1 while the node (peer, ping node or this "
                                "one) is alive as this node sees it", labels=["node", "type"])
    node_status = GaugeMetricFamily("vigil_ha_node_status",
                                    "The node's status as cl_status says it (1 for the current "
                                    "one)", labels=["node", "type", "status"])
    node_age = GaugeMetricFamily("vigil_ha_node_last_heard_age_seconds",
                                 "Seconds since anything was heard from the node",
                                 labels=["node", "type"])
    link_up = GaugeMetricFamily("vigil_ha_link_up", "1 while the node is heard on this link",
                                labels=["node", "link"])
    link_age = GaugeMetricFamily("vigil_ha_link_last_heard_age_seconds",
                                 "Seconds since the node was last heard on this link",
                                 labels=["node", "link"])
    for node in status.get("nodes", []):
        name, kind, state = str(node["name"]), str(node.get("type", "normal")), \
            str(node.get("status", ""))
        node_up.add_metric([name, kind], 0 if state in ("dead", "") else 1)
        node_status.add_metric([name, kind, state], 1)
        age = _age(node.get("last_heard_ago"))
        if age is not None:
            node_age.add_metric([name, kind], age)
        if node.get("self"):
            continue
        for link in node.get("links") or []:
            link_up.add_metric([name, str(link["name"])], 1 if link.get("status") == "up" else 0)
            age = _age(link.get("last_heard_ago"))
            if age is not None:
                link_age.add_metric([name, str(link["name"])], age)
    yield from (node_up, node_status, node_age, link_up, link_age)

    group_running = GaugeMetricFamily(
        "vigil_ha_group_running", "1 where the group runs (or starts), per node of the pair",
        labels=["group", "node"])
    group_state = GaugeMetricFamily(
        "vigil_ha_group_state", "The group's state on this node (1 for the current one) and "
        "why it is there", labels=["group", "home", "state", "cause"])
    peer = next((str(n["name"]) for n in status.get("nodes", [])
                 if not n.get("self") and n.get("type") == "normal"), None)
    for group in status.get("groups", []):
        key = str(group["key"])
        holders = set(group.get("holder") or [])
        for node_name in (me, peer):
            if node_name is not None:
                group_running.add_metric([key, node_name], 1 if node_name in holders else 0)
        group_state.add_metric([key, str(group.get("home", "")), str(group.get("state", "")),
                                cause_label(group.get("why"))], 1)
    yield group_running
    yield group_state

    rejected = CounterMetricFamily("vigil_ha_packets_rejected",
                                   "Heartbeat packets refused, by reason", labels=["reason"])
    for reason, count in sorted((status.get("rejected") or {}).items()):
        rejected.add_metric([reason], count)
    yield rejected
    counters = status.get("counters") or {}
    packets = CounterMetricFamily("vigil_ha_packets", "Heartbeat packets by what became of "
                                  "them (sent, accepted, compressed, from_self)",
                                  labels=["outcome"])
    for name in ("sent", "accepted", "compressed", "from_self"):
        if name in counters:
            packets.add_metric([name], counters[name])
    yield packets

    media = daemon.get("media") or []
    sent = CounterMetricFamily("vigil_ha_medium_packets_sent", "Datagrams sent on a medium",
                               labels=["medium", "link"])
    received = CounterMetricFamily("vigil_ha_medium_packets_received",
                                   "Datagrams received on a medium", labels=["medium", "link"])
    errors = CounterMetricFamily("vigil_ha_medium_errors", "Send or receive errors on a medium",
                                 labels=["medium", "link", "direction"])
    for medium in media:
        labels = [str(medium.get("medium", "")), str(medium.get("link", ""))]
        sent.add_metric(labels, medium.get("sent", 0))
        received.add_metric(labels, medium.get("received", 0))
        errors.add_metric([*labels, "send"], medium.get("send_errors", 0))
        errors.add_metric([*labels, "receive"], medium.get("receive_errors", 0))
    yield from (sent, received, errors)

    ping = status.get("ping_reach")
    if isinstance(ping, int | float):
        yield GaugeMetricFamily("vigil_ha_ping_nodes_reachable",
                                "Ping nodes this node reaches", value=ping)
    fencing = status.get("fencing")
    if fencing is not None:
        fencing_state = GaugeMetricFamily("vigil_ha_fencing_state",
                                          "Where fencing of the peer stands (1 for the current)",
                                          labels=["state"])
        fencing_state.add_metric([str(fencing)], 1)
        yield fencing_state


__all__ = ["FAILOVER_BUCKETS", "HeartbeatMetrics", "build_heartbeat", "cause_label"]
