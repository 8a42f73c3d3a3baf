"""Acceptance test of demo scene 3 (`vigil demo director`): the tutorial's LVS-DR
director pair under vigil heartbeat, played in a fresh seed lab, judged on what
the scene reports and on what is left of the lab afterwards."""

from __future__ import annotations

import pytest

from vigil.demo import director_scene, runner

pytestmark = pytest.mark.lab


def test_the_director_scene_keeps_its_claims_and_leaves_nothing(demo_scenes):
    assert any("director" in title and scene is director_scene.run
               for title, scene in runner.SCENES)
    played = demo_scenes["director"]
    scene = played.wait()
    lab, result, timeline = played.lab, scene.result, played.timeline

    assert result.passed, "\n".join(result.problems) + "\n" + timeline
    # Every fault timed in two parts: detection, then vigil's own reaction.
    timings = result.timings
    assert set(timings) == {"rs1 detected", "rs1 takeover", "crash detected", "crash takeover"}
    # checkinterval=1, checktimeout=3: a refused check fails within about a second.
    assert 0 < timings["rs1 detected"] < 5
    assert 0 <= timings["rs1 takeover"] < 2
    # keepalive 2, deadtime 30: dead 28-30 s after the crash.
    assert 25 < timings["crash detected"] < 35
    # a warm standby on server6: the takeover is the VIP's (bench/failover has the
    # tight numbers; this bound only has to hold on a loaded machine)
    assert 0 < timings["crash takeover"] < 1.0
    # No request fails once vigil has reacted (rs1 quiesced, server6 answering); the
    # reaction itself may cost some, and the notes count them.
    assert set(scene.failed_after) == {"rs1 stopped", "server5 crash"}
    assert [after for _, after in scene.failed_after.values()] == [0, 0]
    assert result.requests_failed == 0
    assert "keep-alive" in result.notes
    assert "asks 5 times: rs1, rs1, rs1, rs1, rs1" in timeline
    assert "asks 5 times: rs2, rs2, rs2, rs2, rs2" in timeline
    # Exactly one host holds the VIP on eth0: server6 (server5 crashed).
    assert director_scene.vip_holders(lab) == ["server6"]

    lab.down()
    assert lab.leftovers() == []
