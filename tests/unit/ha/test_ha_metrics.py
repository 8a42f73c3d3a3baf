"""The heartbeat daemon's metrics: the engine's real status in, exposition text out."""

from __future__ import annotations

from vigil.ha.decision import Cause, Fence, StartGroup, StopGroup
from vigil.ha.engine import LogLine, NodeConfig, NodeEngine, Output
from vigil.ha.groups import groups_from_lines
from vigil.ha.metrics import HeartbeatMetrics, build_heartbeat, cause_label
from vigil.membership.auth import AuthKeys
from vigil.membership.liveness import Timings
from vigil.metrics import exposition

GROUPS = groups_from_lines([("n1", ["IPaddr::198.51.100.100"]), ("n2", ["IPaddr::198.51.100.101"])])


def engine_status(now: float = 0.25) -> dict:
    config = NodeConfig(me="n1", nodes=("n1", "n2"), links=("eth0", "eth1"),
                        timings=Timings(keepalive=0.1, deadtime=0.5),
                        keys=AuthKeys.from_pairs(1, {1: ("crc", "")}), groups=GROUPS,
                        ping_nodes=("198.51.100.250",))
    engine = NodeEngine(config, uuid=b"u" * 16, generation=3, now=0.0)
    engine.start(0.0)
    engine.counters["bad_auth"] += 2
    status = engine.status(now)
    status["daemon"] = {"version": "9.9", "driver": "test",
                        "media": [{"medium": "bcast eth0", "link": "eth0", "sent": 5,
                                   "received": 4, "send_errors": 1}]}
    return status


def metrics(status: dict) -> HeartbeatMetrics:
    return HeartbeatMetrics(lambda: status)


def test_the_engine_status_becomes_nodes_links_groups_and_rejections():
    text = exposition(metrics(engine_status()).registry)
    assert "vigil_ha_up 1.0" in text
    assert 'vigil_ha_info{driver="test",node="n1",phase="init",version="9.9"} 1.0' in text
    assert 'vigil_ha_node_status{node="n2",status="init",type="normal"} 1.0' in text
    assert 'vigil_ha_node_up{node="n1",type="normal"} 1.0' in text
    assert 'vigil_ha_link_up{link="eth1",node="n2"} 0.0' in text
    assert 'vigil_ha_packets_rejected_total{reason="bad_auth"} 2.0' in text
    assert 'vigil_ha_packets_rejected_total{reason="replayed"} 0.0' in text
    assert 'vigil_ha_group_running{group="IPaddr::198.51.100.100",node="n1"} 0.0' in text
    assert 'vigil_ha_group_state{cause="unknown",group="IPaddr::198.51.100.101",home="n2",' \
           'state="released"} 1.0' in text
    assert 'vigil_ha_medium_packets_sent_total{link="eth0",medium="bcast eth0"} 5.0' in text
    assert 'vigil_ha_medium_errors_total{direction="send",link="eth0",medium="bcast eth0"} ' \
           '1.0' in text
    assert 'vigil_ha_timing_seconds{timing="deadtime"} 0.5' in text


def test_ages_are_seconds_since_last_heard():
    status = engine_status()
    peer = next(n for n in status["nodes"] if n["name"] == "n2")
    peer["status"], peer["last_heard_ago"] = "active", 0.125
    peer["links"][0].update(status="up", last_heard_ago=0.25)
    status["groups"][1]["holder"] = ["n2"]
    text = exposition(build_registry(status))
    assert 'vigil_ha_node_last_heard_age_seconds{node="n2",type="normal"} 0.125' in text
    assert 'vigil_ha_link_last_heard_age_seconds{link="eth0",node="n2"} 0.25' in text
    assert 'vigil_ha_group_running{group="IPaddr::198.51.100.101",node="n2"} 1.0' in text


def build_registry(status: dict):
    return metrics(status).registry


def test_a_takeover_is_counted_with_its_cause_and_timed_from_the_decision():
    m = metrics(engine_status())
    group = GROUPS[1]
    why = {group.index: Cause.PEER_DEAD}
    out = Output(actions=[StartGroup(group)],
                 logs=[LogLine("heartbeat.late", "warning", {"node": "n2", "gap": "700ms"})])
    m.engine_output(out, why.__getitem__, now=10.0)
    m.action_done(StartGroup(group), True, now=10.75)
    m.action_done(StopGroup(GROUPS[0]), False, now=11.0)
    m.action_done(Fence("n2"), True, now=11.0)
    text = exposition(m.registry)
    assert 'vigil_ha_failovers_total{cause="peer_dead",group="IPaddr::198.51.100.101",' \
           'result="ok"} 1.0' in text
    assert 'vigil_ha_failover_duration_seconds_count{cause="peer_dead"} 1.0' in text
    assert 'vigil_ha_failover_duration_seconds_sum{cause="peer_dead"} 0.75' in text
    assert 'vigil_ha_failover_duration_seconds_bucket{cause="peer_dead",le="1.0"} 1.0' in text
    assert 'vigil_ha_failover_duration_seconds_bucket{cause="peer_dead",le="0.5"} 0.0' in text
    assert 'vigil_ha_late_heartbeats_total{node="n2"} 1.0' in text
    assert 'vigil_ha_group_stops_total{group="IPaddr::198.51.100.100",result="failed"} 1.0' \
        in text
    assert 'vigil_ha_fence_attempts_total{node="n2",result="ok"} 1.0' in text


def test_a_failed_start_counts_but_is_not_timed():
    m = metrics(engine_status())
    group = GROUPS[0]
    m.engine_output(Output(actions=[StartGroup(group)]), {0: Cause.HOME_NODE}.__getitem__, 1.0)
    m.action_done(StartGroup(group), False, now=2.0)
    text = exposition(m.registry)
    assert 'vigil_ha_failovers_total{cause="home_node",group="IPaddr::198.51.100.100",' \
           'result="failed"} 1.0' in text
    assert "vigil_ha_failover_duration_seconds_count" not in text


def test_monitor_verdicts_and_restarts():
    m = metrics(engine_status())
    m.monitor_verdict("g", "mysqld", "healthy")
    m.monitor_verdict("g", "mysqld", "restart")
    m.restarted("g", "mysqld", True)
    text = exposition(m.registry)
    assert 'vigil_ha_resource_monitor_results_total{group="g",resource="mysqld",' \
           'verdict="restart"} 1.0' in text
    assert 'vigil_ha_resource_restarts_total{group="g",resource="mysqld",result="ok"} 1.0' \
        in text


def test_a_daemon_that_does_not_answer_is_up_0_and_nothing_else():
    def stuck() -> dict:
        raise TimeoutError
    text = exposition(HeartbeatMetrics(stuck).registry)
    assert "vigil_ha_up 0.0" in text and "vigil_ha_node_up" not in text


def test_causes_are_stable_names():
    assert cause_label(Cause.AUTO_FAILBACK) == "auto_failback"
    assert cause_label("peer dead") == "peer_dead"
    assert cause_label(None) == "unknown"
    assert list(build_heartbeat({"node": "n1"}))  # a sparse status still renders


def test_an_abandoned_start_counts_as_cancelled_not_failed():
    m = metrics(engine_status())
    group = GROUPS[0]
    m.engine_output(Output(actions=[StartGroup(group)]), {0: Cause.PEER_DEAD}.__getitem__, 1.0)
    m.action_done(StartGroup(group), False, now=2.0, cancelled=True)
    text = exposition(m.registry)
    assert 'vigil_ha_failovers_total{cause="peer_dead",group="IPaddr::198.51.100.100",' \
           'result="cancelled"} 1.0' in text
    assert 'result="failed"' not in text
