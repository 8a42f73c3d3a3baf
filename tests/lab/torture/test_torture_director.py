"""A short fault campaign on the tutorial's LVS-DR director pair, as `vigil torture` runs it.

Seed 1's first round injects every kind of fault once: the directors are powered
off, killed, stalled, cut, partitioned and delayed, and a real server's nginx is killed
(its weight must go to 0, no request may fail after that, and it must come
back). The checker must find no violated invariant and nothing of the lab may
be left.
"""

from __future__ import annotations

import io

import pytest

from vigil.torture import campaign
from vigil.torture.schedule import KINDS

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]


def test_director_campaign_seed_1():
    out = io.StringIO()
    kinds = KINDS["director"]
    record = campaign.run("director", seed=1, seconds=400, max_faults=len(kinds), out=out)
    text = out.getvalue()
    print(text)
    assert record.violations == 0, text
    assert sorted(o.injected.fault.kind for o in record.outcomes) == sorted(kinds)
    assert all(o.settled is not None for o in record.outcomes)
    power = next(o for o in record.outcomes if o.injected.fault.kind == "power-off")
    if power.injected.fault.role == "active":
        assert power.moved and not power.spurious
    killed = next(o for o in record.outcomes if o.injected.fault.kind == "kill-service")
    assert killed.injected.target in ("rs1", "rs2") and not killed.moved
    assert "at weight 0" in killed.injected.note
