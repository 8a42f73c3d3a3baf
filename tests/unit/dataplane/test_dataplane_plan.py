"""The plan: slots from weights, transitions around changes, learning, retired servers."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_support import ENV, RS1, RS2, RS3, VIP, masq, seed_service, seed_table

from vigil.dataplane.plan import (
    SLOTS,
    WINDOW,
    PlanError,
    Record,
    build_plan,
    hash_spec,
    real_token,
    record_mode,
    service_token,
)
from vigil.lvs.table import Forward, RealKey, RealServer, ServiceKey, Table, VirtualService

T1, T2, T3 = (real_token(RealKey(a, 80)) for a in (RS1, RS2, RS3))


def owners(plan) -> collections.Counter:
    return collections.Counter(plan.services[0].owners)


def test_weights_become_slot_counts_and_two_directors_agree():
    one = build_plan(seed_table(3, 1), ENV)
    other = build_plan(seed_table(3, 1), ENV, now=1234.0)
    assert one == other  # no history, no clock: the standby builds the same slots
    assert owners(one) == {T1: 3070, T2: 1023}
    assert sum(owners(one).values()) == SLOTS
    assert one.services[0].transitions == ()
    assert one.devices == ("eth0", "eth1")


def test_quiescing_keeps_unrecorded_connections_with_their_server_for_a_window():
    before = build_plan(seed_table(), ENV, now=100.0)
    after = build_plan(seed_table(1, 0), ENV, before, now=110.0)
    service = after.services[0]
    assert owners(after) == {T1: SLOTS}
    moved = [i for i, o in enumerate(before.services[0].owners) if o == T2]
    assert [t.slot for t in service.transitions] == moved
    assert {t.legacy for t in service.transitions} == {T2}
    assert {t.until for t in service.transitions} == {110.0 + WINDOW}
    assert after.next_deadline() == 110.0 + WINDOW
    # Nothing changes meanwhile: the same plan (and so no kernel change) ...
    assert build_plan(seed_table(1, 0), ENV, after, now=500.0) == after
    # ... and when the window ends the slots are plain again.
    later = build_plan(seed_table(1, 0), ENV, after, now=110.0 + WINDOW + 1)
    assert later.services[0].transitions == ()


def test_a_slot_that_changes_twice_keeps_its_first_owner_as_legacy():
    start = build_plan(seed_table(), ENV, now=0.0)
    quiet = build_plan(seed_table(1, 0), ENV, start, now=10.0)
    back = build_plan(seed_table(1, 1), ENV, quiet, now=20.0)
    assert back.services[0].transitions == ()  # A -> B -> A: nothing left to protect
    third = RealServer(RS3, 80)
    added = build_plan(seed_table(1, 0, third), ENV, quiet, now=30.0)
    by_slot = {t.slot: t for t in added.services[0].transitions}
    for slot, transition in by_slot.items():
        if start.services[0].owners[slot] == T2:
            assert transition.legacy == T2 and transition.until == 10.0 + WINDOW
        else:  # slots rs1 gave to rs3 just now
            assert transition.legacy == T1 and transition.until == 30.0 + WINDOW
    assert {added.services[0].owners[s] for s in by_slot} <= {T1, T3}


def test_learning_makes_no_transitions():
    before = build_plan(seed_table(), ENV, learning=True)
    after = build_plan(seed_table(1, 0), ENV, before, now=5.0, learning=True)
    assert after.learning and after.services[0].transitions == ()


def test_a_removed_server_stays_retired_while_it_may_have_connections():
    before = build_plan(seed_table(), ENV, now=0.0)
    removed = Table.of([VirtualService(ServiceKey.tcp(VIP, 80), "rr",
                                       reals=(RealServer(RS1, 80),))])
    after = build_plan(removed, ENV, before, now=1.0)
    reals = {r.token: r.retired for r in after.services[0].reals}
    assert reals == {T1: False, T2: True}
    assert after.table() == removed  # the director's table does not show it
    # Drained record sets do not free it while a transition still leads to it ...
    svc = service_token(ServiceKey.tcp(VIP, 80))
    kept = build_plan(removed, ENV, after, now=2.0, drained=[(svc, T2)])
    assert {r.token for r in kept.services[0].reals} == {T1, T2}
    # ... after the window it goes.
    gone = build_plan(removed, ENV, kept, now=2.0 + WINDOW, drained=[(svc, T2)])
    assert {r.token for r in gone.services[0].reals} == {T1}


def test_all_servers_quiesced_leaves_transitions_to_nobody():
    before = build_plan(seed_table(), ENV, now=0.0)
    after = build_plan(seed_table(0, 0), ENV, before, now=1.0)
    service = after.services[0]
    assert service.owners == ()
    assert len(service.transitions) == SLOTS
    assert {t.legacy for t in service.transitions} == {T1, T2}


def test_unreachable_servers_get_no_slots():
    table = seed_table(1, 1, RealServer("203.0.113.7", 80), RealServer("198.51.100.99", 80))
    plan = build_plan(table, ENV)
    assert set(owners(plan)) == {T1, T2}  # behind a gateway / no route at all
    nat = Table.of([VirtualService(ServiceKey.tcp(VIP, 80), "rr",
                                   reals=(masq("203.0.113.7"),))])
    assert set(owners(build_plan(nat, ENV))) == {real_token(RealKey("203.0.113.7", 80))}


def test_schedulers_choose_the_hashed_fields():
    def spec(**kw):
        return hash_spec(seed_service(**kw))

    assert spec() == spec(scheduler="wlc")  # address and port: connections spread
    assert spec(scheduler="sh").port is False
    assert spec(scheduler="sh", sched_flags=("sh-port",)).port is True
    assert spec(scheduler="mh").port is False
    assert spec(scheduler="dh").source is False
    persistent = spec(persistent=300, netmask="255.255.255.0")
    assert (persistent.port, persistent.prefix) == (False, 24)
    assert record_mode(seed_service()) is Record.TRANSITIONS
    assert record_mode(seed_service(persistent=60)) is Record.ALWAYS
    udp = VirtualService(ServiceKey.udp(VIP, 53), "rr", reals=(RealServer(RS1, 53),))
    assert record_mode(udp) is Record.ALWAYS
    assert record_mode(VirtualService(ServiceKey.udp(VIP, 53), ops=True)) is Record.NEVER


def test_nat_services_need_no_transitions():
    nat = VirtualService(ServiceKey.tcp(VIP, 80), "rr", reals=(masq(RS1), masq(RS2)))
    before = build_plan(Table.of([nat]), ENV, now=0.0)
    after = build_plan(Table.of([nat.with_real(masq(RS2, weight=0))]), ENV, before, now=1.0)
    service = after.services[0]
    assert service.nat and not service.netdev
    assert service.transitions == ()
    assert after.devices == ()  # no ingress hook needed


def test_what_this_path_cannot_do_is_refused():
    tunnel = seed_table(1, 1, RealServer(RS3, 80, forward=Forward.IPIP))
    with pytest.raises(PlanError, match="ipip"):
        build_plan(tunnel, ENV)
    fwm = VirtualService(ServiceKey.fwm(5), "rr", reals=(RealServer(RS1, 0),))
    with pytest.raises(PlanError, match="fwmark"):
        build_plan(Table.of([fwm]), ENV)
    fwm_nat = VirtualService(ServiceKey.fwm(5), "rr", reals=(masq(RS1, 0),))
    assert build_plan(Table.of([fwm_nat]), ENV).services[0].nat
