"""The health policy: ldirectord's state handling, scenario in, table and reason out."""

import pytest

from vigil.director.health import HealthPolicy, RunFallbackCommand, SendAlert, SoftFailure, State
from vigil.director.settings import CheckSpec, DirectorConfig, RealSpec, ServiceConfig
from vigil.lvs.table import RealServer, ServiceKey, VirtualService
from vigil.testing import FakeClock

VIP = ServiceKey.tcp("198.51.100.100", 80)
RS1, RS2 = RealServer("198.51.100.1", 80), RealServer("198.51.100.2", 80, weight=3)
FALLBACK = RealServer("127.0.0.1", 80)


def config(quiescent=True, failurecount=1, fallback=FALLBACK, checktype="negotiate", **kw):
    service = ServiceConfig(
        VirtualService(VIP, scheduler="rr"),
        reals=(RealSpec(RS1), RealSpec(RS2)),
        check=CheckSpec(checktype=checktype, service="http"),
        quiescent=quiescent,
        failurecount=failurecount,
        fallback=fallback,
        fallbackcommand="/usr/local/bin/sorry",
        **kw,
    )
    return DirectorConfig(services=(service,))


def weights(policy):
    service = policy.desired().service(VIP)
    return {str(r.key): r.weight for r in service.reals}


@pytest.fixture
def clock():
    return FakeClock()


def test_no_traffic_before_the_first_passed_check(clock):
    policy = HealthPolicy(config(quiescent=True), clock.now())
    assert weights(policy) == {"198.51.100.1:80": 0, "198.51.100.2:80": 0}
    unquiet = HealthPolicy(config(quiescent=False), clock.now())
    assert weights(unquiet) == {}
    decision = policy.observe(VIP, RS1.key, True, clock.now(), "200 OK")
    assert "unchecked -> up" in decision.reason
    assert weights(policy) == {"198.51.100.1:80": 1, "198.51.100.2:80": 0}


def test_quiescent_sets_weight_zero_and_removal_drops_the_server(clock):
    for quiescent, expected in ((True, {"198.51.100.1:80": 0, "198.51.100.2:80": 3}),
                                (False, {"198.51.100.2:80": 3})):
        policy = HealthPolicy(config(quiescent=quiescent), clock.now())
        policy.observe(VIP, RS1.key, True, clock.now())
        policy.observe(VIP, RS2.key, True, clock.now())
        decision = policy.observe(VIP, RS1.key, False, clock.now(), "connection refused")
        assert decision.reason == (
            "real server 198.51.100.1:80 (TCP  198.51.100.100:80) up -> down: connection refused"
        )
        assert weights(policy) == expected


def test_failurecount_gives_soft_failures_and_a_pass_resets_them(clock):
    policy = HealthPolicy(config(failurecount=3), clock.now())
    policy.observe(VIP, RS1.key, True, clock.now())
    first = policy.observe(VIP, RS1.key, False, clock.now())
    assert isinstance(first.actions[0], SoftFailure) and "1/3" in first.reason
    policy.observe(VIP, RS1.key, False, clock.now())
    policy.observe(VIP, RS1.key, True, clock.now())  # resets the count
    policy.observe(VIP, RS1.key, False, clock.now())
    policy.observe(VIP, RS1.key, False, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.UP
    policy.observe(VIP, RS1.key, False, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.DOWN


def test_an_unchecked_server_that_fails_is_down_at_once(clock):
    policy = HealthPolicy(config(failurecount=5), clock.now())
    policy.observe(VIP, RS1.key, False, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.DOWN


def test_fallback_only_when_all_checked_and_none_up(clock):
    policy = HealthPolicy(config(), clock.now())
    first = policy.observe(VIP, RS1.key, False, clock.now())
    assert "127.0.0.1:80" not in weights(policy)  # RS2 still unchecked
    assert not any(isinstance(a, RunFallbackCommand) for a in first.actions)
    assert not first.fallback_changed
    second = policy.observe(VIP, RS2.key, False, clock.now())
    assert weights(policy)["127.0.0.1:80"] == 1
    # the daemon resyncs the table on this flag, never on the reason's wording
    assert second.fallback_changed
    commands = [a for a in second.actions if isinstance(a, RunFallbackCommand)]
    assert [c.argv for c in commands] == [
        ["/usr/local/bin/sorry", "start", "198.51.100.100:80", "tcp"]]
    back = policy.observe(VIP, RS2.key, True, clock.now())
    assert back.fallback_changed
    assert "127.0.0.1:80" not in weights(policy)
    assert [a.verb for a in back.actions if isinstance(a, RunFallbackCommand)] == ["stop"]
    # The command runs once per change, not once per result.
    assert not [a for a in policy.observe(VIP, RS2.key, True, clock.now()).actions
                if isinstance(a, RunFallbackCommand)]


def test_maintenance_forces_down_and_ignores_results_until_removed(clock):
    policy = HealthPolicy(config(), clock.now())
    policy.observe(VIP, RS1.key, True, clock.now())
    decision = policy.set_maintenance(VIP, RS1.key, True, clock.now())
    assert "Server in maintenance" in decision.reason
    assert weights(policy)["198.51.100.1:80"] == 0
    policy.observe(VIP, RS1.key, True, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.DOWN
    policy.set_maintenance(VIP, RS1.key, False, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.DOWN  # needs a passing check
    policy.observe(VIP, RS1.key, True, clock.now())
    assert weights(policy)["198.51.100.1:80"] == 1


def test_checktype_on_and_off(clock):
    on = HealthPolicy(config(checktype="on"), clock.now())
    assert weights(on) == {"198.51.100.1:80": 1, "198.51.100.2:80": 3}
    off = HealthPolicy(config(checktype="off"), clock.now())
    assert weights(off) == {}
    assert off.desired().service(VIP) is not None  # the service exists, empty


def test_reload_keeps_state_of_unchanged_servers_and_new_ones_wait(clock):
    policy = HealthPolicy(config(), clock.now())
    policy.observe(VIP, RS1.key, True, clock.now())
    policy.observe(VIP, RS2.key, True, clock.now())
    rs3 = RealServer("198.51.100.3", 80)
    old = config().services[0]
    new = DirectorConfig(services=(
        ServiceConfig(old.service, reals=(RealSpec(RS1), RealSpec(rs3)), check=old.check,
                      quiescent=True, fallback=FALLBACK),))
    decision = policy.configure(new, clock.now())
    assert not decision.actions
    assert weights(policy) == {"198.51.100.1:80": 1, "198.51.100.3:80": 0}


def test_removed_by_hand_stays_out_until_it_changes_unless_readdquiescent(clock):
    policy = HealthPolicy(config(), clock.now())
    policy.observe(VIP, RS1.key, True, clock.now())
    policy.observe(VIP, RS1.key, False, clock.now())
    policy.removed_by_hand(VIP, RS1.key)
    assert "198.51.100.1:80" not in weights(policy)
    policy.observe(VIP, RS1.key, True, clock.now())
    assert weights(policy)["198.51.100.1:80"] == 1
    readd = config()
    readd = DirectorConfig(services=readd.services, readdquiescent=True)
    policy = HealthPolicy(readd, clock.now())
    policy.observe(VIP, RS1.key, False, clock.now())
    policy.removed_by_hand(VIP, RS1.key)
    assert weights(policy)["198.51.100.1:80"] == 0


def test_email_alerts_on_transitions_and_repeats_while_down(clock):
    policy = HealthPolicy(
        config(emailalert=("ops@example.com",), emailalertfreq=60, smtp="127.0.0.1"),
        clock.now())
    policy.phase = "running"
    policy.observe(VIP, RS1.key, True, clock.now())  # unchecked -> up: no mail
    down = policy.observe(VIP, RS1.key, False, clock.now(), "timeout")
    alerts = [a for a in down.actions if isinstance(a, SendAlert)]
    assert len(alerts) == 1 and "198.51.100.1:80 down" in alerts[0].subject
    assert policy.next_deadline() == clock.now() + 60
    clock.advance(59)
    assert not policy.tick(clock.now())
    clock.advance(1)
    assert [a.subject for a in policy.tick(clock.now()).actions] == [
        "vigil director: real server 198.51.100.1:80 still down (TCP  198.51.100.100:80)"]
    up = policy.observe(VIP, RS1.key, True, clock.now())
    assert any(isinstance(a, SendAlert) and " up " in a.subject for a in up.actions)
    assert policy.next_deadline() is None


def test_rise_needs_consecutive_passes(clock):
    policy = HealthPolicy(config(rise=2), clock.now())
    policy.observe(VIP, RS1.key, True, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.UNCHECKED
    policy.observe(VIP, RS1.key, True, clock.now())
    assert policy.state_of(VIP, RS1.key) == State.UP
