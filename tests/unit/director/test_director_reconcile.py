"""reconcile: minimal, ordered, idempotent; applying it reaches the desired table."""

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.lvs.operations import (
    AddReal,
    AddService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    apply_operations,
)
from vigil.lvs.reconcile import reconcile
from vigil.lvs.table import Forward, RealServer, ServiceKey, Table, VirtualService

VIP = "198.51.100.100"


def service(port=80, scheduler="rr", reals=(), **kw):
    return VirtualService(ServiceKey.tcp(VIP, port), scheduler=scheduler, reals=tuple(reals), **kw)


def real(last, weight=1, forward=Forward.GATE):
    return RealServer(f"198.51.100.{last}", 80, weight=weight, forward=forward)


def test_from_empty_builds_services_then_reals():
    desired = Table.of([service(reals=[real(1), real(2)])])
    ops = reconcile(desired, Table())
    assert [type(op) for op in ops] == [AddService, AddReal, AddReal]
    assert apply_operations(Table(), ops) == desired


def test_a_weight_change_is_one_edit_and_nothing_else():
    actual = Table.of([service(reals=[real(1), real(2)])])
    desired = Table.of([service(reals=[real(1), real(2, weight=0)])])
    assert reconcile(desired, actual) == [EditReal(ServiceKey.tcp(VIP, 80), real(2, weight=0))]


def test_additions_come_before_removals():
    actual = Table.of([service(reals=[real(1)]), service(port=81, reals=[real(3)])])
    desired = Table.of([service(scheduler="wrr", reals=[real(2)]), service(port=82)])
    ops = reconcile(desired, actual)
    kinds = [type(op) for op in ops]
    assert kinds == [AddService, EditService, AddReal, DeleteReal, DeleteService]
    # Deleting a service takes its reals along: no separate DeleteReal for port 81.
    assert not any(isinstance(op, DeleteReal) and op.service.port == 81 for op in ops)
    assert apply_operations(actual, ops) == desired


addresses = st.integers(1, 6).map(lambda i: f"198.51.100.{i}")
reals = st.builds(
    RealServer,
    address=addresses,
    port=st.sampled_from([80, 8080]),
    weight=st.integers(0, 5),
    forward=st.sampled_from(list(Forward)),
)
services = st.builds(
    lambda port, scheduler, persistent, rs: VirtualService(
        ServiceKey.tcp(VIP, port), scheduler=scheduler, persistent=persistent,
        reals=tuple({r.key: r for r in rs}.values()),
    ),
    st.sampled_from([80, 443, 8080]),
    st.sampled_from(["rr", "wlc", "mh"]),
    st.sampled_from([None, 300]),
    st.lists(reals, max_size=5),
)
tables = st.lists(services, max_size=3).map(
    lambda ss: Table.of({s.key: s for s in ss}.values())
)


@settings(max_examples=200, deadline=None)
@given(tables, tables)
def test_reconcile_reaches_desired_and_is_idempotent(desired, actual):
    ops = reconcile(desired, actual)
    reached = apply_operations(actual, ops)
    assert reached == desired
    assert reconcile(desired, reached) == []
    assert reconcile(actual, actual) == []


@settings(max_examples=200, deadline=None)
@given(tables, tables)
def test_reconcile_is_minimal(desired, actual):
    ops = reconcile(desired, actual)
    a, d = actual.service_map, desired.service_map
    adds = sum(1 for k in d if k not in a)
    deletes = sum(1 for k in a if k not in d)
    assert sum(isinstance(op, AddService) for op in ops) == adds
    assert sum(isinstance(op, DeleteService) for op in ops) == deletes
    for op in ops:
        if isinstance(op, (EditReal, AddReal)):
            current = a.get(op.service)
            assert current is None or current.real(op.real.key) != op.real
        if isinstance(op, EditService):
            assert not a[op.service.key].settings_equal(d[op.service.key])
