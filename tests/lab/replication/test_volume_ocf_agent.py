"""ocf:vigil:volume against real volumes: ocf-tester on one node, roles and scores on two.

ocf-tester drives a single node (its peer's host is up but runs no volume):
start (`vigil volume up`), monitor, promote, demote, stop, each twice. The
two-node test checks what a promotable clone depends on: monitor answers 8 on
the Primary and 0 on the Secondary, promote and demote move the role, and the
promotion score each node asks for follows its disk state. No cluster runs in
the lab, so crm_attribute cannot store the score: the agent says which score it
asked for, and that is what is checked.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

SHIMS = Path(__file__).resolve().parents[3] / "contrib" / "ocf" / "vigil"
OCF_TESTER = "/usr/sbin/ocf-tester"
VIGIL = f"{sys.executable} -m vigil"


@pytest.fixture(autouse=True)
def _need_ocf_tester():
    if not shutil.which(OCF_TESTER):
        pytest.skip("ocf-tester (resource-agents) is not installed")


def agent(pair, host: str, action: str, **meta: str):
    env = {"OCF_RESKEY_vigil": VIGIL, "OCF_RESKEY_volume": pair.name,
           "OCF_RESOURCE_INSTANCE": "test_volume",
           **{f"OCF_RESKEY_CRM_meta_{k}": v for k, v in meta.items()}}
    return pair.host(host).run([str(SHIMS / "volume"), action], check=False, env=env,
                               timeout=120)


def score_asked(done) -> str:
    """The score the agent asked crm_attribute for: a number or 'removed'."""
    lines = [line for line in done.stderr.splitlines() if "promotion score " in line]
    assert lines, done.stderr
    return lines[-1].split("promotion score ", 1)[1].split()[0]


def test_volume_passes_ocf_tester_on_one_node(volume_pair):
    pair = volume_pair
    pair.configure("server5")
    pair.create("server5", "16M")
    # fresh metadata is Inconsistent: make this node's data UpToDate once, by hand
    pair.up("server5", "--standalone")
    pair.vigil("server5", "primary", "--force", pair.name)
    pair.vigil("server5", "secondary", pair.name)
    pair.vigil("server5", "down", pair.name)
    done = pair.host("server5").run(
        [OCF_TESTER, "-n", "test_volume", "-o", f"vigil={VIGIL}", "-o", f"volume={pair.name}",
         str(SHIMS / "volume")],
        check=False, timeout=600, env={"OCF_RESKEY_vigil": VIGIL})
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed all tests" in done.stdout
    assert "promotable" not in done.stdout  # promote, demote and notify were all tested
    assert pair.vigil("server5", "role", pair.name).stdout.strip() == "Unconfigured"


def test_volume_roles_and_promotion_scores_on_a_pair(volume_pair):
    pair = volume_pair
    pair.start_pair(size="16M")  # server5 Primary, in sync
    primary = agent(pair, "server5", "monitor")
    assert primary.returncode == 8, primary.stderr
    assert score_asked(primary) == "10000"
    secondary = agent(pair, "server6", "monitor")
    assert secondary.returncode == 0, secondary.stderr
    assert score_asked(secondary) == "10000"  # UpToDate and the peer's disk is known

    # the clone moves: demote server5, promote server6
    assert agent(pair, "server5", "demote").returncode == 0
    assert agent(pair, "server5", "monitor").returncode == 0
    promoted = agent(pair, "server6", "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert agent(pair, "server6", "monitor").returncode == 8
    # a second Primary is refused while the pair is connected: promote fails
    assert agent(pair, "server5", "promote").returncode == 1

    # server5 cut off: it still has UpToDate data, but the peer's may be newer
    pair.vigil("server5", "disconnect", pair.name)
    pair.wait_status("server5", lambda s: s["peer_disk"] == "DUnknown", 30, "peer unknown")
    assert score_asked(agent(pair, "server5", "monitor")) == "1000"
    # outdated (what a fence-peer handler asks for): promotion would be refused
    pair.vigil("server5", "outdate", pair.name)
    outdated = agent(pair, "server5", "monitor")
    assert outdated.returncode == 0
    assert score_asked(outdated) == "removed"
    notified = agent(pair, "server5", "notify", notify_type="post", notify_operation="start")
    assert notified.returncode == 0 and score_asked(notified) == "removed"

    # stop takes the volume down and its score with it
    stopped = agent(pair, "server5", "stop")
    assert stopped.returncode == 0 and score_asked(stopped) == "removed"
    assert agent(pair, "server5", "monitor").returncode == 7
