"""The fault schedule: the seed alone decides it, every kind comes early, holds are sane."""

from __future__ import annotations

import pytest

from vigil.torture.schedule import KINDS, FaultKind, Role, Timing, faults, parse_kinds, plan

TIMING = Timing(keepalive=0.5, deadtime=3.0)


def test_the_same_seed_plans_the_same_faults():
    assert plan(7, "heartbeat", TIMING, 40) == plan(7, "heartbeat", TIMING, 40)


def test_another_seed_plans_other_faults():
    assert plan(7, "heartbeat", TIMING, 40) != plan(8, "heartbeat", TIMING, 40)


def test_a_setup_has_its_own_sequence():
    assert plan(7, "heartbeat", TIMING, 10) != plan(7, "replicated", TIMING, 10)


@pytest.mark.parametrize("setup", sorted(KINDS))
def test_every_kind_comes_in_the_first_round(setup):
    first = plan(3, setup, TIMING, len(KINDS[setup]))
    assert sorted(f.kind for f in first) == sorted(KINDS[setup])


def test_a_longer_plan_extends_a_shorter_one():
    assert plan(5, "heartbeat", TIMING, 30)[:12] == plan(5, "heartbeat", TIMING, 12)


def test_holds_and_calms_are_bounded():
    for fault in plan(11, "replicated", TIMING, 500):
        assert 1.0 <= fault.calm <= 3.0
        assert 0.0 <= fault.hold <= 3 * TIMING.deadtime
        assert (fault.percent > 0) == (fault.kind is FaultKind.LOSS)
        if fault.kind in (FaultKind.PARTITION, FaultKind.KILL_SERVICE):
            assert fault.role is Role.ACTIVE


def test_stalls_straddle_deadtime():
    stalls = {f.hold for f in plan(2, "heartbeat", TIMING, 500) if f.kind is FaultKind.STALL}
    assert min(stalls) < TIMING.deadtime < max(stalls)


def test_the_heartbeat_setup_never_cuts_replication():
    assert all(f.kind is not FaultKind.CUT_REPLICATION
               for f in plan(1, "heartbeat", TIMING, 200))


def test_an_unknown_setup_is_a_clear_error():
    with pytest.raises(ValueError, match="no fault kinds for setup 'nosuch'"):
        next(faults(1, "nosuch", TIMING))


def test_a_fault_describes_itself():
    fault = next(f for f in plan(1, "heartbeat", TIMING, 50) if f.kind is FaultKind.LOSS)
    assert f"drop {fault.percent}% of the" in fault.describe()
    assert fault.to_json()["kind"] == "loss"


def test_kinds_restrict_the_plan():
    only = parse_kinds("replicated", "power-off, kill-service,power-off")
    assert only == (FaultKind.POWER_OFF, FaultKind.KILL_SERVICE)
    kinds = {f.kind for f in plan(4, "replicated", TIMING, 50, only)}
    assert kinds == set(only)
    assert plan(4, "replicated", TIMING, 20, only) == plan(4, "replicated", TIMING, 20, only)


@pytest.mark.parametrize("text", ["", "cut-replication-typo", "cut-replication"])
def test_unknown_kinds_are_a_clear_error(text):
    with pytest.raises(ValueError, match="unknown fault kind"):
        parse_kinds("heartbeat", text)


def test_the_director_setup_gets_every_kind_once_first_and_a_real_server_fault():
    from vigil.torture.schedule import KINDS, SETUPS, Timing, plan

    assert "director" in SETUPS
    timing = Timing(keepalive=0.5, deadtime=3.0)
    first = plan(1, "director", timing, len(KINDS["director"]))
    assert sorted(f.kind for f in first) == sorted(KINDS["director"])
    assert plan(1, "director", timing, 20) == plan(1, "director", timing, 20)  # replayable
    assert "real server's nginx" in next(f for f in first if f.kind == "kill-service").describe()


def test_a_new_kind_leaves_older_seeds_replayable_with_kinds():
    """Seed 2 of the heartbeat setup as docs/reliability.md recorded it, before `flap`
    existed: `--kinds` with the seven older kinds gives the same faults."""
    from vigil.torture.schedule import KINDS, FaultKind, Timing, plan

    older = tuple(k for k in KINDS["heartbeat"]
                  if k not in (FaultKind.FLAP, FaultKind.STOP_FAILS, FaultKind.DELAY))
    faults = plan(2, "heartbeat", Timing(keepalive=0.5, deadtime=3.0), 10, older)
    assert [f.kind.value for f in faults] == [
        "stall", "kill-daemon", "kill-service", "cut-medium", "loss", "power-off", "partition",
        "cut-medium", "partition", "cut-medium"]


def test_a_flap_fault_flaps_around_deadtime():
    from vigil.torture.schedule import FaultKind, Timing, plan

    timing = Timing(keepalive=0.5, deadtime=3.0)
    flaps = [f for f in plan(4, "heartbeat", timing, 200) if f.kind is FaultKind.FLAP]
    assert flaps and {f.period for f in flaps} <= {0.6, 1.5, 3.6}
    assert all(f.period == 0.0 for f in plan(4, "heartbeat", timing, 200)
               if f.kind is not FaultKind.FLAP)
    assert "0.6 s down, 0.6 s up" in next(f for f in flaps if f.period == 0.6).describe()


def test_the_mixed_setup_gets_the_faults_both_daemons_must_ride_out():
    from vigil.torture.mixed_setup import heartbeat_ha_cf
    from vigil.torture.schedule import KINDS, SETUPS, plan

    assert "mixed" in SETUPS
    # heartbeat v1 watches no service: a killed MariaDB on its node stays dead
    assert FaultKind.KILL_SERVICE not in KINDS["mixed"]
    first = plan(1, "mixed", TIMING, len(KINDS["mixed"]))
    assert sorted(f.kind for f in first) == sorted(KINDS["mixed"])
    text = heartbeat_ha_cf()
    assert text.startswith("logfile /var/log/ha-log\n")
    assert "/usr/libexec/heartbeat/ipfail" in text and "/usr/lib64/" not in text
    assert "keepalive 500ms" in text and "ucast eth1 203.0.113.6" in text


def test_stop_fails_comes_late_and_targets_the_active_node():
    from vigil.torture.schedule import KINDS, FaultKind, Role, Timing, plan

    assert KINDS["heartbeat"][-2:] == (FaultKind.STOP_FAILS, FaultKind.DELAY)
    faults = [f for f in plan(3, "heartbeat", Timing(0.5, 3.0), 100)
              if f.kind is FaultKind.STOP_FAILS]
    assert faults and all(f.role is Role.ACTIVE and f.hold == 0.0 for f in faults)
    assert "stop fail" in faults[0].describe()


def test_cut_then_crash_comes_late_in_the_replicated_setup_only_and_hits_the_active_node():
    assert KINDS["replicated"][-4] is FaultKind.CUT_THEN_CRASH
    assert all(FaultKind.CUT_THEN_CRASH not in KINDS[s] for s in KINDS if s != "replicated")
    found = [f for f in plan(3, "replicated", TIMING, 100) if f.kind is FaultKind.CUT_THEN_CRASH]
    assert found and all(f.role is Role.ACTIVE and f.hold >= TIMING.deadtime * 0.5
                         for f in found)
    assert "then power off the active node" in found[0].describe()


def test_heartbeat306_gets_the_heartbeat_setups_faults_of_the_mixed_kinds():
    """The side-by-side table: vigil and heartbeat 3.0.6 given the very same faults."""
    mixed_kinds = KINDS["mixed"]
    for seed in (1, 101, 102):
        theirs = plan(seed, "heartbeat306", TIMING, 40)
        ours = plan(seed, "heartbeat", TIMING, 40, only=mixed_kinds)
        assert theirs == ours
        assert {f.kind for f in theirs} == set(mixed_kinds)
    assert plan(5, "heartbeat306", TIMING, 20, only=(FaultKind.STALL,)) == \
        plan(5, "heartbeat", TIMING, 20, only=(FaultKind.STALL,))
    with pytest.raises(ValueError, match="kill-service"):
        parse_kinds("heartbeat306", "kill-service")


def test_disk_error_comes_late_in_the_replicated_setup_only():
    """A new kind goes last: `--kinds` without it replays the seeds run before it."""
    assert KINDS["replicated"][-3:] == (FaultKind.DISK_ERROR, FaultKind.DELAY,
                                        FaultKind.BAD_BLOCKS)
    assert all(FaultKind.DISK_ERROR not in KINDS[s] for s in KINDS if s != "replicated")
    found = [f for f in plan(3, "replicated", TIMING, 120) if f.kind is FaultKind.DISK_ERROR]
    assert found and {f.role for f in found} == {Role.ACTIVE, Role.STANDBY}
    assert "backing disk" in found[0].describe()


def test_a_delay_fault_holds_frames_from_a_wan_s_delay_to_beyond_deadtime():
    """Last in the three vigil setups (older seeds replay with `--kinds` without it)."""
    assert all(KINDS[s][-1] is FaultKind.DELAY for s in ("heartbeat", "director"))
    assert KINDS["replicated"][-2] is FaultKind.DELAY
    assert FaultKind.DELAY not in KINDS["mixed"] and FaultKind.DELAY not in KINDS["heartbeat306"]
    faults = plan(6, "heartbeat", TIMING, 300)
    delays = [f for f in faults if f.kind is FaultKind.DELAY]
    assert {f.delay for f in delays} == {0.02, TIMING.keepalive * 0.5, TIMING.deadtime * 0.5,
                                         TIMING.deadtime * 1.5}
    assert all(f.delay == 0.0 for f in faults if f.kind is not FaultKind.DELAY)
    assert {f.role for f in delays} == {Role.ACTIVE, Role.STANDBY}
    assert "by 0.02 s for" in next(f for f in delays if f.delay == 0.02).describe()
    without = tuple(k for k in KINDS["heartbeat"] if k is not FaultKind.DELAY)
    assert FaultKind.DELAY not in {f.kind for f in plan(6, "heartbeat", TIMING, 100, without)}


def test_bad_blocks_come_last_in_the_replicated_setup_only():
    """A disk with bad sectors: after the delay, so `--kinds` without it replays older seeds."""
    assert KINDS["replicated"][-1] is FaultKind.BAD_BLOCKS
    assert all(FaultKind.BAD_BLOCKS not in KINDS[s] for s in KINDS if s != "replicated")
    found = [f for f in plan(3, "replicated", TIMING, 150) if f.kind is FaultKind.BAD_BLOCKS]
    assert found and {f.role for f in found} == {Role.ACTIVE, Role.STANDBY}
    assert "bad block (1 in 16)" in found[0].describe()
    older = KINDS["replicated"][:-1]
    assert FaultKind.BAD_BLOCKS not in {f.kind for f in plan(3, "replicated", TIMING, 100, older)}


def test_a_clock_jump_comes_only_when_named_and_leaves_every_default_sequence_alone():
    """Opt-in: drawn by default it would change every seed's sequence (and CI's)."""
    assert all(FaultKind.CLOCK_JUMP not in kinds for kinds in KINDS.values())
    assert all(f.kind is not FaultKind.CLOCK_JUMP and f.step == 0.0
               for setup in ("heartbeat", "replicated", "director", "mixed")
               for f in plan(5, setup, TIMING, 200))
    only = parse_kinds("mixed", "clock-jump,power-off")
    assert only == (FaultKind.CLOCK_JUMP, FaultKind.POWER_OFF)
    jumps = [f for f in plan(5, "mixed", TIMING, 200, only) if f.kind is FaultKind.CLOCK_JUMP]
    assert {f.step for f in jumps} == {-86400, -3600, -61, 61, 3600, 86400}
    assert {f.role for f in jumps} == {Role.ACTIVE, Role.STANDBY}
    assert all(TIMING.deadtime * 0.5 <= f.hold <= TIMING.deadtime * 3.0 for f in jumps)
    back = next(f for f in jumps if f.step == -3600)
    assert "wall clock by -3600 s, step it back after" in back.describe()
    assert {f.to_json()["kind"] for f in jumps} == {"clock-jump"}
    with pytest.raises(ValueError, match="unknown fault kind"):
        parse_kinds("heartbeat306", "clock-jump")


def test_loss_comes_to_the_heartbeat_306_setups_only_when_named_in_the_heartbeat_setups_place():
    """heartbeat306 draws the heartbeat setup's sequence: with loss named there too, each
    fault is the one `--setup heartbeat` gets with the same kinds and seed."""
    assert all(FaultKind.LOSS not in {f.kind for f in plan(5, setup, TIMING, 200)}
               for setup in ("mixed", "heartbeat306"))
    names = "power-off,kill-daemon,cut-medium,partition,stall,flap,loss"
    for setup in ("mixed", "heartbeat306"):
        assert FaultKind.LOSS in parse_kinds(setup, names)
    only = parse_kinds("heartbeat306", names)
    theirs = plan(7, "heartbeat306", TIMING, 60, only)
    ours = plan(7, "heartbeat", TIMING, 60, parse_kinds("heartbeat", names))
    assert [f.to_json() for f in theirs] == [f.to_json() for f in ours]
    assert FaultKind.LOSS in {f.kind for f in theirs}
    assert {f.percent for f in theirs if f.kind is FaultKind.LOSS} <= {20, 40, 60, 80}
