"""Acceptance test of demo scene 1: the tutorial's heartbeat pair with MariaDB behind the VIP.

It plays the very scene `vigil demo heartbeat` plays, then checks its claims
on the lab itself: the files are the tutorial's, exactly one node holds the
VIP and runs MariaDB, the client reaches it, and nothing of the lab is left.
"""

from __future__ import annotations

import pymysql
import pytest

from vigil.demo import heartbeat_scene, runner
from vigil.lab.seed import lab_file

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_heartbeat_pair_scene(demo_scenes):
    played = demo_scenes["heartbeat"]
    result = played.wait()
    seed_lab = played.lab
    assert result.passed, result.problems
    assert result.requests_failed == 0
    timings = result.timings
    assert set(timings) == {"crash detected", "takeover", "failback", "mysqld restart"}
    # deadtime 30 with keepalive 2: the peer is declared dead 28 s to 30 s after the
    # crash (wide margins: the machine is shared)
    assert 26.0 < timings["crash detected"] < 45.0
    assert 0.0 <= timings["takeover"] < 15.0
    assert 0.0 < timings["failback"] < 30.0
    assert 0.0 < timings["mysqld restart"] < 20.0

    # The tutorial's files on both nodes, unchanged but for authkeys' key: crc -> sha1.
    for name in ("server5", "server6"):
        host = seed_lab.host(name)
        assert host.read_file("/etc/ha.d/ha.cf") == lab_file("ha.cf")
        authkeys = host.read_file("/etc/ha.d/authkeys")
        assert authkeys.replace(authkeys.splitlines()[1], "1 crc") == lab_file("authkeys")
        assert authkeys.splitlines()[1].startswith("1 sha1 ")
        assert host.read_file("/etc/ha.d/haresources") == lab_file("haresources.mysqld")

    # Exactly one node holds the VIP (read from both nodes' interfaces), runs MariaDB,
    # and answers the client through the VIP.
    vip = seed_lab.address("vip")
    holders = [name for name in ("server5", "server6")
               if any(a.split("/")[0] == vip for a in seed_lab.addresses(name))]
    assert holders == ["server5"]
    assert heartbeat_scene.pids_of(seed_lab, "server5", "mariadbd")
    assert not heartbeat_scene.pids_of(seed_lab, "server6", "mariadbd")
    with seed_lab.host("client").entered():
        connection = pymysql.connect(host=vip, user="demo", password="demo", database="demo",
                                     connect_timeout=5)
    with connection, connection.cursor() as cursor:
        cursor.execute(heartbeat_scene.QUERY)
        assert cursor.fetchone() == ("server5.example.com", "server5")

    text = played.timeline
    assert "FAULT: server5 loses power" in text and "FAULT: kill -9 mariadbd" in text

    seed_lab.down()
    assert seed_lab.leftovers() == []


def test_the_scene_is_in_the_demo():
    titles = [title for title, scene in runner.SCENES if scene is heartbeat_scene.run]
    assert titles and "heartbeat" in titles[0]
