"""Campaign seeds that found a fault in vigil, replayed.

A fault found late in a 30-minute run is replayed from a fault or two before it
(`first_fault`) on a fresh setup: a fault's kind, role and times come from the seed alone.

Seed 7 with `--kinds stall,power-off`: vigil on the active node is stopped for
4.5 s (deadtime 3): the standby declares it dead, but its takeover is refused
(the stopped node's kernel still answers for the VIP) and the group is marked
failed there. 1.5 s after that settles the active node loses power: the standby
must take the group over after deadtime, not wait out `failed_retry` (30 s) from
the refused start (it did: the client went unserved until the node booted again).

Seed 108 with `--kinds stop-fails,kill-daemon,stall,power-off,partition`: the same refused
takeover after a 7.5 s stall, then a standby request on the active node 4.5 s later. The
standby's failed start was held against it, so the request answered "handing" and nothing
moved for the 40 s the campaign waited (the three stop-fails "without a reaction" of
heartbeat seed 107 had the same shape).
"""

from __future__ import annotations

import io

import pytest

from vigil.torture import campaign
from vigil.torture.schedule import FaultKind, parse_kinds

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_refused_takeover_does_not_delay_the_next_one():
    out = io.StringIO()
    record = campaign.run("heartbeat", seed=7, seconds=300, max_faults=2, out=out,
                          only=parse_kinds("heartbeat", "stall,power-off"))
    text = out.getvalue()
    print(text)
    stall, power = record.outcomes
    assert stall.injected.fault.kind is FaultKind.STALL and stall.injected.fault.hold > 3
    assert power.injected.fault.kind is FaultKind.POWER_OFF
    assert power.injected.target == "server5" and power.injected.fault.hold > 4
    assert power.moved, text  # server6 carried the VIP alone while server5 was off
    assert record.violations == 0, text


def test_replicated_seed_101_fault_96_a_split_during_a_refused_promotion_settles_at_once():
    """replicated seed 101, fault 96 (after fault 95, the partition before it, which leaves
    the volume as the long run had it): the active node cut off for 3.3 s (deadtime 3). The
    standby takes the group and asks its volume to become primary, which refuses while it
    still sees a connected primary (drbddisk retries that for about 10 s). The heal comes
    during those retries: the start must be abandoned (the home node keeps the group), not
    finished first while the VIP stays on both nodes (9.9 s in the long run; 9.1 s in this
    replay before the fix, 0.5 s after)."""
    out = io.StringIO()
    record = campaign.run("replicated", seed=101, seconds=300, max_faults=97, first_fault=95,
                          out=out)
    text = out.getvalue()
    print(text)
    first, partition = record.outcomes
    assert first.injected.fault.index == 95
    fault = partition.injected.fault
    assert (fault.index, fault.kind, fault.hold) == (96, FaultKind.PARTITION, 3.3)
    assert partition.injected.target == "server5"
    assert partition.settle_time is not None and partition.settle_time < 5.0, text
    assert record.violations == 0, text


def test_heartbeat_seed_108_fault_46_a_standby_after_a_refused_takeover_hands_the_group_over():
    """After the stall (fault 45) the standby's refused start is void (the active node was
    alive all along), so the standby request of fault 46 is acted on: the group's stop is
    tried, fails (the fault), and vigil blocks the group on it."""
    out = io.StringIO()
    record = campaign.run("heartbeat", seed=108, seconds=300, max_faults=47, first_fault=45,
                          out=out, only=parse_kinds(
                              "heartbeat", "stop-fails,kill-daemon,stall,power-off,partition"))
    text = out.getvalue()
    print(text)
    stall, stop_fails = record.outcomes
    assert stall.injected.fault.kind is FaultKind.STALL and stall.injected.fault.hold > 3
    assert stop_fails.injected.fault.kind is FaultKind.STOP_FAILS
    assert "blocked on the failed stop" in stop_fails.injected.note, text
    assert record.violations == 0, text
