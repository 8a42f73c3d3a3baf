"""The announcement decision: which VIPs a director announces to its routers, and why."""

from __future__ import annotations

from vigil.director.announce import AnnouncePolicy, Cause, Change, Inputs, host_prefix, reals_up
from vigil.testing import FakeClock

VIP = "198.51.100.100"
VIP6 = "2001:db8:0:1::100"


def up(count: int = 1, **kwargs: bool) -> Inputs:
    return Inputs(reals_up={VIP: count}, **kwargs)


def test_host_prefixes():
    assert host_prefix(VIP) == "198.51.100.100/32"
    assert host_prefix("2001:DB8:0:1:0::100") == "2001:db8:0:1::100/128"


def test_nothing_is_announced_before_the_table_is_settled():
    policy = AnnouncePolicy()
    assert policy.update(up(settled=False), 0.0) == []
    assert policy.snapshot() == [{"vip": VIP, "prefix": f"{VIP}/32", "announced": False,
                                  "cause": "not-settled"}]
    assert policy.update(up(), 1.0) == [Change(f"{VIP}/32", True, Cause.SERVING)]
    assert policy.announced() == [f"{VIP}/32"]
    assert policy.update(up(), 2.0) == []  # nothing changes twice


def test_settled_without_a_healthy_real_server_announces_nothing():
    policy = AnnouncePolicy()
    assert policy.update(up(0), 0.0) == []
    assert policy.snapshot()[0]["cause"] == "no-healthy-real"


def test_withdraw_when_the_last_real_server_goes_down_and_back_after_it_returns():
    policy = AnnouncePolicy()
    policy.update(up(2), 0.0)
    assert policy.update(up(1), 1.0) == []
    assert policy.update(up(0), 2.0) == [Change(f"{VIP}/32", False, Cause.NO_HEALTHY_REAL)]
    assert policy.update(up(1), 3.0) == [Change(f"{VIP}/32", True, Cause.SERVING)]


def test_hold_down_delays_the_return_after_no_healthy_real():
    clock = FakeClock(0.0)
    policy = AnnouncePolicy(holddown=5.0)
    policy.update(up(), clock.now())
    clock.advance(1.0)
    assert policy.update(up(0), clock.now())[0].cause is Cause.NO_HEALTHY_REAL
    assert policy.next_deadline() == 6.0
    clock.advance(1.0)
    assert policy.update(up(), clock.now()) == []
    assert policy.snapshot()[0]["cause"] == "hold-down"
    clock.advance(3.9)
    assert policy.update(up(), clock.now()) == []
    clock.advance(0.1)
    assert policy.update(up(), clock.now()) == [Change(f"{VIP}/32", True, Cause.SERVING)]
    assert policy.next_deadline() is None


def test_hold_down_does_not_delay_the_first_announcement_or_after_a_drain():
    policy = AnnouncePolicy(holddown=30.0)
    assert policy.update(up(), 0.0)[0].announce
    assert policy.update(up(draining=True), 1.0) == [Change(f"{VIP}/32", False,
                                                            Cause.DRAINING)]
    assert policy.next_deadline() is None
    assert policy.update(up(), 2.0) == [Change(f"{VIP}/32", True, Cause.SERVING)]


def test_causes_in_order_of_precedence():
    policy = AnnouncePolicy()
    assert policy.cause_for(up(0, stopping=True, active=False, draining=True, settled=False),
                            VIP, 0.0) is Cause.STOPPING
    assert policy.cause_for(up(0, active=False, draining=True, settled=False),
                            VIP, 0.0) is Cause.STANDBY
    assert policy.cause_for(up(0, draining=True, settled=False), VIP, 0.0) is Cause.DRAINING
    assert policy.cause_for(up(0, settled=False), VIP, 0.0) is Cause.NOT_SETTLED
    assert policy.cause_for(up(0), VIP, 0.0) is Cause.NO_HEALTHY_REAL
    assert policy.cause_for(up(1), VIP, 0.0) is Cause.SERVING


def test_standby_stop_and_withdraw_all():
    policy = AnnouncePolicy()
    both = Inputs(reals_up={VIP: 1, VIP6: 1})
    assert [c.prefix for c in policy.update(both, 0.0)] == [f"{VIP}/32", f"{VIP6}/128"]
    assert policy.update(Inputs(reals_up={VIP: 1, VIP6: 1}, active=False), 1.0) == [
        Change(f"{VIP}/32", False, Cause.STANDBY), Change(f"{VIP6}/128", False, Cause.STANDBY)]
    policy.update(both, 2.0)
    assert policy.withdraw_all(Cause.STOPPING) == [
        Change(f"{VIP}/32", False, Cause.STOPPING), Change(f"{VIP6}/128", False, Cause.STOPPING)]
    assert policy.announced() == []
    assert policy.withdraw_all(Cause.STOPPING) == []


def test_a_vip_that_leaves_the_configuration_is_withdrawn_and_forgotten():
    policy = AnnouncePolicy()
    policy.update(Inputs(reals_up={VIP: 1, VIP6: 0}), 0.0)
    assert policy.update(Inputs(reals_up={VIP6: 0}), 1.0) == [
        Change(f"{VIP}/32", False, Cause.REMOVED)]
    assert [row["vip"] for row in policy.snapshot()] == [VIP6]


def test_reals_up_sums_services_on_one_address_and_skips_firewall_marks():
    counts = reals_up([(VIP, [True, False]), (VIP, [True]), (VIP6, [False]), ("", [True])])
    assert counts == {VIP: 2, VIP6: 0}
    assert Change(f"{VIP}/32", True, Cause.SERVING).address == VIP


def test_nat_problems_name_every_masq_real_server():
    from vigil.director.announce import nat_problems

    assert nat_problems([("tcp:VIP:80", [("rs1:80", "gate"), ("rs2:80", "masq")]),
                         ("udp:VIP:53", [("rs3:53", "ipip")])]) == [
        "tcp:VIP:80 -> rs2:80 uses NAT (masq)"]


def test_vigil_cf_announce_settings_and_their_errors():
    from vigil.config import extension

    config = extension.parse("director_announce exabgp\nannounce_holddown 1500ms\n")
    assert (config.director_announce, config.announce_holddown) == ("exabgp", 1.5)
    assert extension.parse("").director_announce == "off"
    parsed = extension.analyze("\ndirector_announce bgp\n", "/etc/ha.d/vigil.cf")
    assert not parsed.ok
    [problem] = parsed.diagnostics
    assert (problem.location.path, problem.location.line) == ("/etc/ha.d/vigil.cf", 2)
    assert "'bgp'" in problem.message and "exabgp" in problem.message
    [problem] = extension.analyze("announce_linger 11\n", "/etc/ha.d/vigil.cf").diagnostics
    assert problem.location.line == 1 and "at most 10s" in problem.message
