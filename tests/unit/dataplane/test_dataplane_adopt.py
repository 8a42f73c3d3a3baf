"""A restarted director reads the plan back from the kernel's listing and changes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_support import ENV, RS1, RS2, VIP, listing_of, masq, seed_table

from vigil.dataplane.adopt import AdoptError, adopt
from vigil.dataplane.commands import transaction
from vigil.dataplane.plan import SLOTS, WINDOW, build_plan
from vigil.dataplane.ruleset import render
from vigil.lvs.table import RealServer, ServiceKey, Table, VirtualService


def roundtrip(plan, now=1000.0):
    listing = listing_of(transaction(None, render(plan)))
    return adopt(listing.get("netdev", []), listing.get("inet", []), now)


def mixed_table() -> Table:
    nat = VirtualService(ServiceKey.tcp(VIP, 8080), "wlc", persistent=600,
                         netmask="255.255.255.0", sched_flags=("sh-port",), reals=(
                             masq(RS1, 8080, 3), masq("127.0.0.1", 8081, 0),
                             RealServer(RS2, 8080, 1)))
    v6 = VirtualService(ServiceKey.udp("2001:db8:0:1::100", 53), "sh", reals=(
        RealServer("2001:db8:0:1::1", 53), RealServer("2001:db8:0:1::2", 53, 0)))
    fwm = VirtualService(ServiceKey.fwm(7, 6), "rr", reals=(masq("2001:db8:0:1::1", 0),))
    return Table.of([*seed_table(), nat, v6, fwm])


@pytest.mark.parametrize("learning", [False, True])
def test_adopted_plan_renders_the_same_and_sends_nothing(learning):
    plan = build_plan(mixed_table(), ENV, learning=learning)
    adopted = roundtrip(plan)
    assert adopted.table() == plan.table()
    assert adopted.learning == learning
    assert adopted.devices == plan.devices
    rebuilt = build_plan(mixed_table(), ENV, adopted, now=1001.0, learning=learning)
    assert transaction(render(adopted), render(rebuilt)) == []


def test_transitions_and_retired_servers_survive_a_restart():
    before = build_plan(seed_table(), ENV, now=0.0)
    one = Table.of([VirtualService(ServiceKey.tcp(VIP, 80), "rr",
                                   reals=(RealServer(RS1, 80),))])
    after = build_plan(one, ENV, before, now=1.0)
    adopted = roundtrip(after, now=500.0)
    service = adopted.services[0]
    assert [(t.slot, t.legacy) for t in service.transitions] == \
        [(t.slot, t.legacy) for t in after.services[0].transitions]
    assert {t.until for t in service.transitions} == {500.0 + WINDOW}  # window restarts
    assert [r.retired for r in service.reals] == [False, True]
    assert transaction(render(adopted), render(build_plan(one, ENV, adopted, now=501.0))) == []


def test_nothing_in_the_kernel_is_nothing_to_adopt():
    assert adopt([], [], 0.0) is None


def test_a_tampered_table_is_not_adopted():
    listing = listing_of(transaction(None, render(build_plan(seed_table(), ENV))))["netdev"]
    for obj in listing:
        if "map" in obj and obj["map"]["name"].startswith("m_"):
            obj["map"]["elem"] = obj["map"]["elem"][:-1]  # one slot lost
    with pytest.raises(AdoptError):
        adopt(listing, [], 0.0)
    foreign = [{"table": {"family": "netdev", "name": "vigil"}},
               {"chain": {"family": "netdev", "table": "vigil", "name": "mine"}}]
    with pytest.raises(AdoptError):
        adopt(foreign, [], 0.0)


weights = st.integers(min_value=0, max_value=5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(weights, weights, weights), min_size=1, max_size=6))
def test_any_sequence_of_changes_keeps_every_slot_and_restarts_cleanly(steps):
    plan = None
    for now, (w1, w2, w3) in enumerate(steps):
        table = seed_table(w1, w2, RealServer("198.51.100.3", 80, w3))
        plan = build_plan(table, ENV, plan, now=float(now))
        service = plan.services[0]
        slots = render(plan).netdev.maps["m_tcp_198_51_100_100_80"].elements
        if w1 or w2 or w3:
            assert len(slots) == SLOTS  # no slot is ever without an element
        assert all(t.legacy != service.owners[t.slot] for t in service.transitions
                   if service.owners)
        tokens = {r.token for r in service.reals}
        assert {t.legacy for t in service.transitions} <= tokens
    adopted = roundtrip(plan, now=float(len(steps)))
    again = build_plan(plan.table(), ENV, adopted, now=float(len(steps)))
    assert transaction(render(adopted), render(again)) == []


def test_a_standbys_gate_is_read_back():
    plan = build_plan(mixed_table(), ENV, standby=True)
    adopted = roundtrip(plan)
    assert adopted.standby is True
    assert transaction(render(adopted), render(plan)) == []
