"""Campaign seeds that found a fault in vigil, replayed.

Seed 7 with `--kinds stall,power-off`: vigil on the active node is stopped for
4.5 s (deadtime 3): the standby declares it dead, but its takeover is refused
(the stopped node's kernel still answers for the VIP) and the group is marked
failed there. 1.5 s after that settles the active node loses power: the standby
must take the group over after deadtime, not wait out `failed_retry` (30 s) from
the refused start (it did: the client went unserved until the node booted again).
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
