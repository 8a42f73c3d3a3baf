"""A short fault campaign on the tutorial's heartbeat pair, as `vigil torture` runs it.

Seed 1's first round injects every kind of fault once (power-off and boot, kill -9
of vigil and of MariaDB, a cut medium, a partition, frame loss, a stalled daemon, a
flapping medium, a service whose stop fails; the delay runs in the director's campaign);
the checker must find no violated invariant, and nothing of the lab may be left.
"""

from __future__ import annotations

import io
import json

import pytest

from vigil.torture import campaign
from vigil.torture.schedule import KINDS, FaultKind

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]


def test_heartbeat_campaign_seed_1(tmp_path):
    out = io.StringIO()
    record_path = tmp_path / "torture.json"
    # the kinds before `delay` (which the director campaign runs): with them, seed 1's
    # first round powers off the active node
    kinds = tuple(k for k in KINDS["heartbeat"] if k is not FaultKind.DELAY)
    record = campaign.run("heartbeat", seed=1, seconds=400, max_faults=len(kinds), out=out,
                          json_path=record_path, only=kinds)
    text = out.getvalue()
    print(text)
    assert record.violations == 0, text
    assert sorted(o.injected.fault.kind for o in record.outcomes) == sorted(kinds)
    assert all(o.settled is not None for o in record.outcomes)
    # a powered-off active node is taken over: the client was served by the peer meanwhile
    power = next(o for o in record.outcomes if o.injected.fault.kind == "power-off")
    assert power.moved and not power.spurious
    assert "| total" in text and "0 invariant violations" in text
    saved = json.loads(record_path.read_text())
    assert saved["seed"] == 1 and saved["violations"] == 0
    assert len(saved["faults"]) == len(kinds)
