"""ocf:vigil:* agents' pure half: exit-code maps, promotion scores, metadata, parameters."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vigil.cluster import ocf
from vigil.cluster.ocf import Ocf, VolumeView

ROOT = Path(__file__).resolve().parents[3]
SHIMS = ROOT / "contrib" / "ocf" / "vigil"
DTD_DIR = Path("/usr/share/resource-agents")


def view(role="Secondary", disk="UpToDate", peer_disk="UpToDate", connection="Connected"):
    return VolumeView(role, disk, peer_disk, connection)


@pytest.mark.parametrize(("code", "expected"), [
    (0, Ocf.SUCCESS), (1, Ocf.NOT_RUNNING), (2, Ocf.NOT_RUNNING), (3, Ocf.NOT_RUNNING),
    (4, Ocf.ERR_GENERIC), (70, Ocf.ERR_GENERIC),
])
def test_lsb_status_maps_as_pacemaker_reads_lsb_resources(code, expected):
    assert ocf.from_lsb_status(code) is expected


@pytest.mark.parametrize(("code", "expected"), [
    (0, Ocf.SUCCESS), (1, Ocf.ERR_GENERIC), (2, Ocf.ERR_CONFIGURED), (3, Ocf.ERR_INSTALLED),
    (10, Ocf.NOT_RUNNING), (11, Ocf.ERR_GENERIC), (70, Ocf.ERR_GENERIC),
])
def test_action_exit_codes(code, expected):
    assert ocf.from_action(code) is expected


def test_monitor_is_running_master_on_the_primary():
    assert ocf.volume_monitor(view(role="Primary")) is Ocf.RUNNING_MASTER
    assert int(ocf.volume_monitor(view(role="Primary"))) == 8
    assert ocf.volume_monitor(view(role="Secondary")) is Ocf.SUCCESS
    assert ocf.volume_monitor(None) is Ocf.NOT_RUNNING


@pytest.mark.parametrize(("state", "score"), [
    (view(role="Primary", peer_disk="DUnknown", connection="Connecting"), 10000),
    (view(role="Primary"), 10000),
    (view(), 10000),  # Secondary, both UpToDate
    (view(peer_disk="Inconsistent"), 10000),  # resyncing from here
    (view(peer_disk="DUnknown", connection="Connecting"), 1000),  # the peer may be newer
    # vigil volume primary refuses an Inconsistent or Outdated disk, even next to an
    # UpToDate peer (ocf:linbit:drbd gives 10 there): no score
    (view(disk="Inconsistent", peer_disk="UpToDate"), None),
    (view(disk="Outdated", peer_disk="UpToDate"), None),
    (view(disk="Consistent", peer_disk="DUnknown", connection="StandAlone"), 5),
    (view(disk="Outdated", peer_disk="DUnknown", connection="StandAlone"), None),
    (view(disk="Inconsistent", peer_disk="DUnknown"), None),
    (view(disk="Diskless", peer_disk="DUnknown"), None),
    (None, None),
])
def test_promotion_scores(state, score):
    assert ocf.promotion_score(state) == score


def test_scores_order_uptodate_above_consistent_above_nothing():
    uptodate = ocf.promotion_score(view(peer_disk="DUnknown", connection="Connecting"))
    consistent = ocf.promotion_score(view(disk="Consistent", peer_disk="DUnknown"))
    assert isinstance(uptodate, int) and isinstance(consistent, int)
    assert uptodate > consistent > 0


def test_transitional_disk_keeps_the_score():
    assert ocf.promotion_score(view(disk="Attaching")) is ocf.Keep.KEEP


def test_view_from_vigil_volume_status_json():
    status = {"name": "r0", "role": "Primary", "peer_role": "Secondary", "disk": "UpToDate",
              "peer_disk": "UpToDate", "connection": "Connected", "replication": "Established"}
    assert VolumeView.from_status(status) == view(role="Primary")


@pytest.mark.parametrize("name", ocf.AGENTS)
def test_metadata_is_well_formed_and_lists_parameters_and_actions(name):
    spec = ocf.SPECS[name]
    root = ET.fromstring(ocf.metadata(spec).split("\n", 2)[2])  # past the doctype
    assert root.tag == "resource-agent" and root.get("name") == name
    params = {p.get("name"): p for p in root.iter("parameter")}
    assert set(params) == {p.name for p in spec.parameters}
    actions = {a.get("name") for a in root.iter("action")}
    assert {"start", "stop", "monitor", "meta-data", "validate-all"} <= actions
    if name == "volume":
        assert {"promote", "demote", "notify"} <= actions
        assert params["volume"].get("required") == "1"


@pytest.mark.skipif(not (DTD_DIR / "ra-api-1.dtd").exists(), reason="resource-agents missing")
@pytest.mark.parametrize("name", ocf.AGENTS)
def test_metadata_validates_against_ra_api_dtd(name):
    done = subprocess.run(["xmllint", "--noout", "--valid", "-"], cwd=DTD_DIR,
                          input=ocf.metadata(ocf.SPECS[name]), capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_parameters_from_the_environment_with_defaults():
    env = {"OCF_RESKEY_volume": "r0", "OCF_RESKEY_unrelated": "x"}
    values = ocf.parameters(ocf.VOLUME, env)
    assert values == {"volume": "r0", "config": "", "vigil": "vigil"}
    assert ocf.missing(ocf.VOLUME, values) == []
    assert ocf.missing(ocf.VOLUME, ocf.parameters(ocf.VOLUME, {})) == ["volume"]
    assert ocf.missing(ocf.REALSERVER, {"vip": "  "}) == ["vip"]
    director = ocf.parameters(ocf.DIRECTOR, {})
    assert director["configfile"] == "ldirectord.cf" and director["backend"] == "auto"


@pytest.mark.parametrize("name", ocf.AGENTS)
def test_shim_is_executable_and_runs_vigil_ocf(name):
    shim = SHIMS / name
    assert shim.stat().st_mode & 0o777 == 0o755
    assert f"ocf {name} " in shim.read_text()


def test_shim_without_vigil_says_not_installed_and_stop_succeeds(tmp_path):
    missing = str(tmp_path / "no-such-vigil")
    env = {"OCF_RESKEY_vigil": missing, "PATH": "/usr/bin:/bin"}
    run = lambda action: subprocess.run(  # noqa: E731
        [str(SHIMS / "volume"), action], env=env, capture_output=True, check=False)
    assert run("start").returncode == Ocf.ERR_INSTALLED
    assert run("monitor").returncode == Ocf.NOT_RUNNING
    assert run("stop").returncode == Ocf.SUCCESS


def test_volume_not_for_this_node_is_not_running_and_stops(tmp_path):
    """A cluster node without the resource in its DRBD files, or without an `on` section for
    itself (the third node of a cluster whose volume has two disks): a probe says not
    running and a stop succeeds; only a configuration that does not parse is an error."""
    res = (
        "resource r0 {\n"
        "  on elsewhere-a { device /dev/drbd1; disk /dev/vdb; address 203.0.113.201:7789;"
        " meta-disk internal; }\n"
        "  on elsewhere-b { device /dev/drbd1; disk /dev/vdb; address 203.0.113.202:7789;"
        " meta-disk internal; }\n"
        "}\n"
    )
    (tmp_path / "other.res").write_text(res)
    (tmp_path / "broken.res").write_text("resource r0 {\n  on {\n")

    def run(action: str, volume: str, conf: str) -> int:
        env = {"OCF_RESKEY_volume": volume, "OCF_RESKEY_config": str(tmp_path / conf),
               "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "vigil", "ocf", "volume", action],
                              env=env, capture_output=True, check=False).returncode

    for volume in ("r0", "absent"):  # no `on` section for this host; no such resource
        assert run("monitor", volume, "other.res") == Ocf.NOT_RUNNING
        assert run("stop", volume, "other.res") == Ocf.SUCCESS
        assert run("validate-all", volume, "other.res") == Ocf.ERR_INSTALLED
        assert run("start", volume, "other.res") == Ocf.ERR_INSTALLED
    assert run("validate-all", "r0", "broken.res") == Ocf.ERR_CONFIGURED
