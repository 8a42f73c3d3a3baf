"""The checker on made-up timelines: settle, outages, the VIP on both nodes, failovers."""

from __future__ import annotations

import pytest

from vigil.torture.checks import (
    DUAL_BOUND,
    SETTLE_BOUND,
    STABLE,
    Injected,
    Query,
    Sample,
    dual_windows,
    in_sync,
    judge,
    may_move,
    outage,
    settled_at,
    summarize,
    unexcused_spans,
    writable_primary,
)
from vigil.torture.report import fault_lines, table, transitions
from vigil.torture.schedule import Fault, FaultKind, Role, Timing

TIMING = Timing(keepalive=0.5, deadtime=3.0)
A, B = "server5", "server6"


def samples(*spans: tuple[float, float, str]) -> list[Sample]:
    """Samples every 0.1 s: (from, to, "server5+server6")."""
    out = []
    for start, end, who in spans:
        t = start
        while t < end - 1e-9:
            out.append(Sample(round(t, 3), frozenset(who.split("+")) if who else frozenset()))
            t += 0.1
    return out


def served(start: float, end: float, node: str | None = A, every: float = 0.2) -> list[Query]:
    out = []
    t = start
    while t < end - 1e-9:
        out.append(Query(round(t, 3), round(t + 0.05, 3), node is not None, node))
        t += every
    return out


def fault(kind: FaultKind, role: Role = Role.ACTIVE, hold: float = 2.0) -> Fault:
    return Fault(0, kind, role, hold, 1.0, 40 if kind is FaultKind.LOSS else 0)


# -- settle ----------------------------------------------------------------------------------
def test_settled_when_home_alone_holds_and_serves():
    seen = samples((0, 5, B), (5, 10, A))
    assert settled_at(seen, served(0, 10), 0, 10, A) == (5.0, A)


def test_not_settled_before_stable_long_enough():
    seen = samples((0, 5, B), (5, 5 + STABLE - 0.5, A))
    assert settled_at(seen, served(0, 10), 0, 10, A) is None


def test_any_single_holder_settles_without_a_home():
    seen = samples((0, 5, "server5+server6"), (5, 10, B))
    assert settled_at(seen, served(0, 10, B), 0, 10) == (5.0, B)
    assert settled_at(seen, served(0, 10, B), 0, 10, A) is None


def test_a_holder_change_restarts_the_settle():
    seen = samples((0, 5, A), (5, 10, B))
    assert settled_at(seen, served(0, 5) + served(5, 10, B), 0, 10) == (5.0, B)


def test_not_settled_without_a_served_query():
    seen = samples((0, 10, A))
    assert settled_at(seen, served(0, 10, node=None), 0, 10, A) is None


def test_settled_only_after_the_last_failed_query():
    queries = [*served(0, 3), Query(3.0, 5.0, False), *served(3.2, 10)]
    assert settled_at(samples((0, 10, A)), queries, 0, 10, A) == (pytest.approx(3.0), A)


def test_an_answer_from_the_wrong_node_is_not_settled():
    queries = served(0, 10, B)
    assert settled_at(samples((0, 10, A)), queries, 0, 10, A) is None


def test_a_late_dual_holder_undoes_the_settle():
    seen = samples((0, 4, A), (4, 4.3, "server5+server6"), (4.3, 10, A))
    assert settled_at(seen, served(0, 10), 0, 10) == (4.3, A)


# -- outage ----------------------------------------------------------------------------------
def test_outage_runs_from_first_failure_to_next_answer():
    queries = [Query(1.0, 1.1, True, A), Query(2.0, 4.0, False), Query(3.0, 5.0, False),
               Query(4.5, 4.6, True, B)]
    assert outage(queries, 0, 10) == (pytest.approx(2.6), 2)


def test_an_unended_outage_runs_to_the_window_end():
    assert outage([Query(2.0, 4.0, False)], 0, 10) == (8.0, 1)


def test_no_failure_no_outage():
    assert outage(served(0, 10), 0, 10) == (0.0, 0)


# -- dual holders ----------------------------------------------------------------------------
def test_dual_windows():
    seen = samples((0, 1, A), (1, 2, "server5+server6"), (2, 3, B), (3, 3.5, "server5+server6"))
    spans = dual_windows(seen)
    assert [(round(s, 1), round(e, 1)) for s, e in spans] == [(1.0, 2.0), (3.0, 3.4)]


def test_a_dual_vip_outside_a_split_is_a_violation():
    injected = Injected(fault(FaultKind.POWER_OFF), A, 0.0, 4.0, A)
    seen = samples((0, 3, ""), (3, 4, B), (4, 4 + DUAL_BOUND + 0.5, "server5+server6"),
                   (5.5, 12, A))
    outcome = judge(injected, seen, served(0, 12), 12, TIMING)
    assert any("on both nodes" in v for v in outcome.violations)


def test_a_dual_vip_during_a_partition_is_expected():
    injected = Injected(fault(FaultKind.PARTITION, hold=6), A, 0.0, 6.0, A)
    seen = samples((0, 3, A), (3, 7, "server5+server6"), (7, 14, A))
    outcome = judge(injected, seen, served(0, 14), 14, TIMING)
    assert outcome.violations == []
    assert round(outcome.dual, 1) == 4.0
    assert not outcome.spurious


def test_a_dual_vip_during_a_delay_is_a_split_and_the_group_may_move():
    """Frames held longer than deadtime silence the node to its peer, as a partition."""
    delayed = fault(FaultKind.DELAY, Role.STANDBY, hold=6)
    injected = Injected(delayed, B, 0.0, 6.0, A)
    seen = samples((0, 3, A), (3, 7, "server5+server6"), (7, 14, A))
    outcome = judge(injected, seen, served(0, 14), 14, TIMING)
    assert outcome.violations == [] and not outcome.spurious
    assert may_move(delayed, TIMING)


def test_a_split_left_unresolved_after_the_heal_is_a_violation():
    injected = Injected(fault(FaultKind.PARTITION, hold=6), A, 0.0, 6.0, A)
    late = 6.0 + TIMING.deadtime + 6.0
    seen = samples((0, 3, A), (3, late, "server5+server6"), (late, late + 5, A))
    outcome = judge(injected, seen, served(0, late + 5), late + 5, TIMING)
    assert any("after the heal" in v for v in outcome.violations)


# -- a whole fault ---------------------------------------------------------------------------
def test_a_power_off_with_failover_and_failback_passes():
    injected = Injected(fault(FaultKind.POWER_OFF), A, 0.0, 5.0, A)
    seen = samples((0, 3.2, ""), (3.2, 6, B), (6, 6.2, ""), (6.2, 12, A))
    queries = served(0, 0.1) + served(0.2, 3.5, None) + served(3.6, 6, B) + served(6.2, 12)
    outcome = judge(injected, seen, queries, 12, TIMING)
    assert outcome.violations == []
    assert outcome.moved and not outcome.spurious
    assert round(outcome.settle_time or 0, 1) == 1.2
    assert round(outcome.outage, 2) == 3.45


def test_a_failover_on_a_killed_service_is_spurious():
    injected = Injected(fault(FaultKind.KILL_SERVICE, hold=0), A, 0.0, 0.0, A)
    seen = samples((0, 1, A), (1, 3, B), (3, 10, A))
    outcome = judge(injected, seen, served(0, 10), 10, TIMING)
    assert outcome.moved and outcome.spurious


def test_never_settling_is_a_violation():
    injected = Injected(fault(FaultKind.CUT_MEDIUM), A, 0.0, 2.0, A)
    outcome = judge(injected, samples((0, 30, "")), served(0, 30, None), 30, TIMING)
    assert outcome.settled is None
    assert any(v.startswith("not settled") for v in outcome.violations)


def test_a_late_settle_is_a_violation():
    healed = 2.0
    late = healed + TIMING.deadtime + SETTLE_BOUND + 1
    injected = Injected(fault(FaultKind.CUT_MEDIUM), A, 0.0, healed, A)
    outcome = judge(injected, samples((0, late, B), (late, late + 5, A)),
                    served(0, late + 5), late + 5, TIMING)
    assert any("bound" in v for v in outcome.violations)


def test_which_faults_may_move_the_group():
    dead = TIMING.deadtime
    assert may_move(fault(FaultKind.POWER_OFF), TIMING)
    assert not may_move(fault(FaultKind.POWER_OFF, Role.STANDBY), TIMING)
    assert may_move(fault(FaultKind.PARTITION), TIMING)
    assert may_move(fault(FaultKind.STALL, hold=dead * 1.5), TIMING)
    assert not may_move(fault(FaultKind.STALL, hold=dead * 0.3), TIMING)
    assert not may_move(fault(FaultKind.CUT_MEDIUM), TIMING)
    assert not may_move(fault(FaultKind.KILL_SERVICE), TIMING)
    assert not may_move(fault(FaultKind.DISK_ERROR), TIMING)  # attached under the service
    assert not may_move(fault(FaultKind.BAD_BLOCKS), TIMING)


# -- the report ------------------------------------------------------------------------------
def test_summary_and_table():
    ok = judge(Injected(fault(FaultKind.POWER_OFF), A, 0.0, 5.0, A),
               samples((0, 3, ""), (3, 6, B), (6, 12, A)), served(6, 12), 12, TIMING)
    bad = judge(Injected(fault(FaultKind.CUT_MEDIUM), A, 20.0, 22.0, A),
                samples((20, 21, B), (21, 50, "")), served(20, 50, None), 50, TIMING)
    rows = {r.kind: r for r in summarize([ok, bad])}
    assert rows["power-off"].failovers == 1 and rows["power-off"].violations == 0
    assert rows["cut-medium"].violations == 1 and rows["cut-medium"].spurious == 1
    text = "\n".join(table("heartbeat", [ok, bad], None, ["the lab left x"]))
    assert "| total           |        2 |          2 |" in text
    assert "VIOLATION at the end: the lab left x" in text
    lines = fault_lines(bad, samples((20, 21, B), (21, 50, "")), 0.0, 50)
    assert lines[0].startswith("[   20.00s] FAULT #0 cut-medium on server5")
    assert any("VIOLATION: not settled" in line for line in lines)


def test_transitions():
    seen = samples((0, 1, A), (1, 2, ""), (2, 3, B))
    assert [w for _, w in transitions(seen, 0, 3)] == ["server5", "none", "server6"]


def test_arp_transitions_ignore_a_single_lost_answer():
    from vigil.torture.report import arp_lines, steady_transitions

    seen = samples((0, 1, A), (1, 1.1, ""), (1.1, 2, A), (2, 2.5, ""), (2.5, 3, B))
    assert [(round(at, 1), w) for at, w in steady_transitions(seen, 0, 3)] == [
        (0.0, "server5"), (2.0, "nobody"), (2.5, "server6")]
    fault = Fault(0, FaultKind.POWER_OFF, Role.ACTIVE, 1.0, 1.0)
    outcome = judge(Injected(fault, A, 0.0, 1.0, A), samples((0, 3, A)), [], 3.0, TIMING)
    cache = [(s.at, A if s.at < 2.6 else B) for s in seen]
    lines = arp_lines(outcome, seen, cache, 3.0)
    assert lines[:3] == [f"{'':12}ARP answers from server5 +0.00 s",
                         f"{'':12}ARP answers from nobody +2.00 s",
                         f"{'':12}ARP answers from server6 +2.50 s"]
    assert lines[3:] == [f"{'':12}client's entry names server5 +0.00 s",
                         f"{'':12}client's entry names server6 +2.60 s"]


def test_rows_lost_phantom_and_in_flight():
    from vigil.torture.checks import check_rows

    rows = check_rows(acknowledged={1, 2, 3, 5}, attempted={1, 2, 3, 4, 5, 6},
                      present={1, 2, 4, 5, 9})
    assert rows.lost == (3,)
    assert rows.phantom == (9,)
    assert rows.in_flight == 1
    assert check_rows({1}, {1}, {1}) == type(rows)((), (), 0)


# -- the replicated volume ----------------------------------------------------------------------
def _status(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"role": "Primary", "io_suspended": None,
                               "replication": "Established", "disk": "UpToDate",
                               "peer_disk": "UpToDate", "out_of_sync": 0}
    return {**base, **fields}


def test_a_primary_takes_writes_unless_its_io_is_suspended():
    assert writable_primary(_status())
    assert not writable_primary(_status(io_suspended="fencing"))
    assert not writable_primary(_status(role="Secondary"))
    assert not writable_primary({})


def test_disks_are_in_sync_only_connected_up_to_date_and_nothing_marked():
    assert in_sync(_status())
    assert not in_sync(_status(replication="SyncSource"))
    assert not in_sync(_status(peer_disk="Inconsistent"))
    assert not in_sync(_status(out_of_sync=4096))
    assert not in_sync(_status(replication="Off", disk="UpToDate"))


def _injected(kind: FaultKind, at: float, healed: float) -> Injected:
    return Injected(Fault(0, kind, Role.ACTIVE, healed - at, 1.0), A, at, healed, A)


def test_two_primaries_are_excused_only_around_a_split():
    partition = _injected(FaultKind.PARTITION, 10.0, 15.0)
    power = _injected(FaultKind.POWER_OFF, 30.0, 32.0)
    spans = [(12.0, 14.0), (15.0 + TIMING.deadtime + 1.0, 20.0), (31.0, 31.5), (50.0, 50.2)]
    assert unexcused_spans(spans, [partition, power], TIMING) == [(31.0, 31.5), (50.0, 50.2)]
    assert unexcused_spans(spans, [], TIMING) == spans


def test_a_sampler_keeps_its_looks_and_skips_a_look_that_raises():
    from vigil.testing import wait_until
    from vigil.torture.heartbeat_setup import Sampler

    looks = iter([frozenset({A}), None, frozenset({A, B})])

    def look() -> frozenset[str]:
        found = next(looks, frozenset())
        if found is None:
            raise OSError("a node between power-off and boot")
        return found

    sampler = Sampler(look, every=0.001)
    sampler.start()
    try:
        wait_until(lambda: len(sampler.samples) >= 3, 5, "three samples")
    finally:
        sampler.stop()
    assert [s.holders for s in sampler.samples[:2]] == [frozenset({A}), frozenset({A, B})]
    assert not sampler.is_alive()


def test_only_rows_acknowledged_inside_a_split_brain_window_are_explained():
    from vigil.torture.checks import split_losses

    acked_at = {1: 10.0, 2: 20.0, 3: 25.0, 4: 40.0}
    explained, unexplained = split_losses([1, 2, 3, 4, 5], acked_at, [(19.0, 25.0)])
    assert explained == [2, 3]
    assert unexplained == [1, 4, 5]  # 5: never acknowledged at a known time
    assert split_losses([2], acked_at, []) == ([], [2])


def test_the_offsets_a_verify_reported_are_read_from_the_log_after_its_start(tmp_path):
    from vigil.torture.replicated_setup import differing_offsets

    log = tmp_path / "volume-r0.log"
    earlier = ("2026-12-05 18:00:00,000 vigil.volume WARNING volume.out_of_sync "
               "resource=r0 offset=4096\n")
    log.write_text(earlier)
    since = log.stat().st_size
    with log.open("a") as more:
        more.write("2026-12-05 18:00:01,000 vigil.volume INFO volume.verify_start resource=r0\n")
        for offset in (8192, 1048576):
            more.write("2026-12-05 18:00:02,000 vigil.volume WARNING volume.out_of_sync "
                       f"resource=r0 offset={offset}\n")
    assert differing_offsets(log, since) == [8192, 1048576]
    assert differing_offsets(log, 0) == [4096, 8192, 1048576]
    assert differing_offsets(tmp_path / "missing.log", 0) == []
