"""Liveness timers: deadtime per node over all links, per-link state, warntime, initdead."""

from __future__ import annotations

import pytest

from vigil.errors import VigilError
from vigil.membership.liveness import EventKind, Liveness, Timings
from vigil.testing import FakeClock

T = Timings(keepalive=0.1, deadtime=0.5, warntime=0.25, initdead=2.0, deadping=0.4)


def kinds(events):
    return [(e.kind, e.node, e.link) for e in events]


def live(clock: FakeClock, **kwargs) -> Liveness:
    return Liveness("n1", ["n1", "n2"], ["eth0", "eth1"], kwargs.pop("timings", T),
                    clock.now(), **kwargs)


def test_timings_are_validated_like_heartbeat():
    with pytest.raises(VigilError, match="twice keepalive"):
        Timings(keepalive=1, deadtime=2)
    with pytest.raises(VigilError, match="initdead"):
        Timings(keepalive=1, deadtime=10, initdead=5)
    assert Timings(keepalive=1, deadtime=30).initial == 30
    assert Timings(keepalive=1, deadtime=5).initial == 12
    assert Timings(keepalive=1, deadtime=8).initial == 16
    assert Timings(keepalive=1, deadtime=8).warn == 4


def test_a_silent_peer_is_dead_only_after_initdead_at_start():
    clock = FakeClock(0)
    core = live(clock)
    assert core.tick(1.9) == []
    assert core.next_deadline() == pytest.approx(2.0)
    events = core.tick(2.0)
    assert (EventKind.NODE_DEAD, "n2", "") in kinds(events)
    assert (EventKind.COMM_UP, "", "") in kinds(events)


def test_comm_is_up_once_every_node_was_heard_then_deadtime_applies():
    core = live(FakeClock(0))
    events = core.heard("n2", "eth0", 0.3, status="active")
    assert (EventKind.COMM_UP, "", "") in kinds(events)
    assert (EventKind.NODE_ALIVE, "n2", "eth0") in kinds(events)
    assert kinds(core.tick(0.79)) == [(EventKind.LINK_DEAD, "n2", "eth1")]  # never heard on it
    dead = core.tick(0.8)
    assert (EventKind.NODE_DEAD, "n2", "") in kinds(dead)
    assert dead[0].seconds == pytest.approx(0.5)


def test_a_peer_is_dead_only_when_silent_on_all_links():
    core = live(FakeClock(0))
    core.heard("n2", "eth0", 0.0, status="active")
    core.heard("n2", "eth1", 0.0, status="active", fresh=False)
    for step in range(1, 20):
        now = step * 0.1
        core.heard("n2", "eth1", now, status="active")  # eth0 was cut at 0
        events = core.tick(now)
        assert (EventKind.NODE_DEAD, "n2", "") not in kinds(events)
    assert core.node("n2").links["eth0"].status == "dead"
    assert core.node("n2").links["eth1"].status == "up"
    assert core.node("n2").alive


def test_links_come_back_up_and_duplicates_count_for_links_only():
    core = live(FakeClock(0))
    core.heard("n2", "eth0", 0.0, status="active")
    core.tick(0.6)
    assert core.node("n2").status == "dead"
    back = core.heard("n2", "eth1", 0.7, fresh=False)
    assert kinds(back) == [(EventKind.LINK_UP, "n2", "eth1")]
    assert core.node("n2").status == "dead"  # a duplicate proves the cable, not the node


def test_late_heartbeat_reports_the_gap_and_severity():
    core = live(FakeClock(0))
    core.heard("n2", "eth0", 0.0, status="active")
    late = core.heard("n2", "eth0", 0.3, status="active")
    assert late[0].kind is EventKind.LATE_HEARTBEAT and late[0].seconds == pytest.approx(0.3)
    assert not late[0].severe
    core.heard("n2", "eth0", 0.4, status="active")
    assert core.heard("n2", "eth0", 0.5, status="active") == []


def test_the_peers_advertised_deadtime_is_used_for_it():
    core = live(FakeClock(0))
    core.heard("n2", "eth0", 0.0, status="active", deadtime=2.5)
    assert not any(e.kind is EventKind.NODE_DEAD for e in core.tick(2.4))
    assert any(e.kind is EventKind.NODE_DEAD for e in core.tick(2.5))


def test_ping_nodes_die_after_deadping_and_are_counted():
    core = live(FakeClock(0), ping_nodes=["198.51.100.250", "routers"])
    core.heard("n2", "eth0", 0.0, status="active")
    core.heard("198.51.100.250", "icmp", 0.0)
    core.heard("routers", "icmp", 0.0)
    assert core.pings_reachable() == 2
    core.heard("n2", "eth0", 0.3, status="active")
    core.heard("routers", "icmp", 0.3)
    events = core.tick(0.4)
    assert (EventKind.NODE_DEAD, "198.51.100.250", "") in kinds(events)
    assert core.pings_reachable() == 1


def test_alone_in_the_cluster_comm_is_up_at_once():
    core = Liveness("n1", ["n1"], ["eth0"], T, 0.0)
    assert core.comm_up and core.next_deadline() == float("inf")


def test_silence_while_this_process_slept_does_not_kill_a_peer():
    """Stopped 2 s (deadtime 0.5): the peer's queued packets are read before judging."""
    core = live(FakeClock(0))
    core.heard("n2", "eth0", 0.0, status="active")
    core.heard("n2", "eth1", 0.0, status="active", fresh=False)
    core.excuse(2.0, now=2.3)  # awake 0.3 s of the 2.3 s since it was last heard
    assert core.tick(2.3) == []
    assert core.node("n2").alive
    assert core.next_deadline() == pytest.approx(2.5)
    late = core.heard("n2", "eth0", 2.31, status="active")
    assert not [e for e in late if e.kind is EventKind.LATE_HEARTBEAT and e.severe]
    dead = core.tick(2.81)  # then silence while awake counts again
    assert (EventKind.NODE_DEAD, "n2", "") in kinds(dead)


def test_an_excuse_never_moves_a_clock_past_now_nor_revives_the_dead():
    core = live(FakeClock(0))
    core.heard("n2", "eth0", 1.0, status="active")
    core.tick(1.6)
    assert not core.node("n2").alive
    core.excuse(5.0, now=1.7)
    assert not core.node("n2").alive and core.node("n2").last_heard == 1.0
    fresh = live(FakeClock(0))
    fresh.heard("n2", "eth0", 1.0, status="active")
    fresh.excuse(5.0, now=1.2)
    assert fresh.node("n2").last_heard == pytest.approx(1.2)
