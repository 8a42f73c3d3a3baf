"""A short fault campaign on the tutorial's replicated MySQL (heartbeat + `vigil volume`).

The committer writes numbered rows through the VIP all along; after every fault the
group must settle on one node, and at the end every acknowledged row must be in the
table and no row that was never sent, and once the writes stop the two disks, in
sync, must be equal block for block (`vigil volume verify`, after every fault too);
never may both volumes be Primary and take writes outside a split fault. The kinds
are those after which the tutorial's setup (no fencing in its DRBD file) promises
that: a partition or heavy loss lets both nodes write, which the long campaign in
docs/reliability.md measures instead.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from vigil.torture import campaign
from vigil.torture.schedule import parse_kinds

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]

KINDS = ("power-off,kill-daemon,kill-service,cut-medium,cut-replication,stall,disk-error,"
         "bad-blocks")


def test_replicated_campaign_seed_1(tmp_path):
    out = io.StringIO()
    record_path = tmp_path / "torture.json"
    only = parse_kinds("replicated", KINDS)
    record = campaign.run("replicated", seed=1, seconds=600, max_faults=len(only), out=out,
                          json_path=record_path, only=only)
    text = out.getvalue()
    print(text)
    assert record.violations == 0, text
    assert sorted(o.injected.fault.kind for o in record.outcomes) == sorted(only)
    assert record.rows_lost == 0
    saved = json.loads(record_path.read_text())
    assert saved["acked_rows_lost"] == 0 and saved["violations"] == 0
    # the two disks compared block by block once in sync (a difference is a violation)
    verified = re.search(r"verify compared (\d+) blocks in [\d.]+ s, (\d+) differed", text)
    assert verified is not None, text
    assert int(verified[1]) > 0 and int(verified[2]) == 0
    assert any(verified[0] in note for note in saved["notes"])
    # and after every fault, while the committer wrote
    compared = re.findall(r"disks equal \(verify of (\d+) blocks", text)
    assert len(compared) == len(only) and all(int(n) == int(verified[1]) for n in compared), text
