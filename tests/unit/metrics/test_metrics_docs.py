"""docs/metrics.md lists every metric the collectors produce; the dashboard uses only those."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from vigil.metrics import exposition

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
NAME = re.compile(r"\b((?:vigil|node_ipvs)_[a-z_]+)")
SUFFIXES = ("_bucket", "_count", "_sum")


def produced() -> set[str]:
    """Every family name the three collectors emit for a full snapshot plus events."""
    from director.test_director_metrics import snapshot as director_snapshot
    from ha.test_ha_metrics import GROUPS, engine_status
    from replication.test_volume_metrics import status as volume_status

    from vigil.director.metrics import DirectorMetrics
    from vigil.ha.decision import Cause, Fence, StartGroup, StopGroup
    from vigil.ha.engine import LogLine, Output
    from vigil.ha.metrics import HeartbeatMetrics
    from vigil.replication.metrics import VolumeMetrics

    status = engine_status()
    for node in status["nodes"]:  # heard: ages are reported
        node["last_heard_ago"] = 0.1
        for link in node.get("links", []):
            link["last_heard_ago"] = 0.1
    status["ping_reach"] = 1
    hb = HeartbeatMetrics(lambda: status)
    hb.engine_output(Output(actions=[StartGroup(GROUPS[0])],
                            logs=[LogLine("heartbeat.late", fields={"node": "n2"})]),
                     {0: Cause.PEER_DEAD}.__getitem__, 0.0)
    for action in (StartGroup(GROUPS[0]), StopGroup(GROUPS[0]), Fence("n2")):
        hb.action_done(action, True, 1.0)
    hb.monitor_verdict("g", "r", "healthy")
    hb.restarted("g", "r", True)
    director = DirectorMetrics(director_snapshot)
    from types import SimpleNamespace

    from vigil.director.checkers.base import CheckResult
    from vigil.lvs.table import RealKey
    director.check_done(SimpleNamespace(real=SimpleNamespace(key=RealKey("198.51.100.1", 80)),
                                        config=SimpleNamespace(check=SimpleNamespace(
                                            checktype="connect"))),  # type: ignore[arg-type]
                        CheckResult.up(), 0.01)
    volume = VolumeMetrics(lambda: volume_status(verify={"running": True, "total_blocks": 2,
                                                         "done_blocks": 1, "out_of_sync": 0}))
    names = set()
    for registry in (hb.registry, director.registry, volume.registry):
        for family in text_string_to_metric_families(exposition(registry)):
            for sample in family.samples:
                names.add(sample.name)
    return names


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_metric_is_documented_and_every_documented_one_exists():
    names = {base(n) for n in produced()}
    documented = set(NAME.findall((ROOT / "docs" / "metrics.md").read_text()))
    assert names - documented == set()
    assert {base(n) for n in documented} - names == set()


def test_the_dashboard_uses_only_metrics_that_exist():
    names = produced()
    dashboard = json.loads((ROOT / "contrib" / "grafana" / "vigil.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            used.update(NAME.findall(target["expr"]))
    used.update(NAME.findall(json.dumps(dashboard["templating"])))
    assert used and used - names == set()
