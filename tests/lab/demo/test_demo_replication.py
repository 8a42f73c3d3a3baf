"""Acceptance test of demo scene 2: replicated MySQL survives the primary's crash.

It plays the very scene `vigil demo replicated` plays, then checks its claims
on the lab itself: the tutorial's files (the .res with only its disk changed),
server6 alone holds the VIP with the volume promoted and mounted, the rows are
in the table through the VIP, and after teardown nothing of the lab is left,
not even a loop device.
"""

from __future__ import annotations

import pymysql
import pytest

from vigil.demo import replication_scene as scene
from vigil.lab.seed import lab_file
from vigil.replication import loopdev
from vigil.testing import vigil_command

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_replicated_mysql_scene(demo_scenes):
    played = demo_scenes["replicated"]
    result = played.wait()
    lab = played.lab
    assert result.passed, result.problems
    assert result.rows_lost == 0
    assert result.requests_failed == 0
    assert set(result.timings) == {"detected", "takeover"}
    # deadtime 30 with keepalive 2: declared dead 28-30 s after the crash (wide margins:
    # the machine is shared); the takeover is vigil's own part.
    assert 26.0 < result.timings["detected"] < 45.0
    assert 0.0 < result.timings["takeover"] < 20.0
    assert result.loops, "the scene must say which loop devices its volumes used"

    # The tutorial's files (on server6: server5 is powered off); the .res differs only in
    # its disk line.
    server6 = lab.host("server6")
    assert server6.read_file("/etc/ha.d/ha.cf") == lab_file("ha.cf")
    assert scene.diff_lines(lab_file("authkeys"), server6.read_file("/etc/ha.d/authkeys"))[:1] \
        == ["-1 crc"]  # the one line changed: a real key (the demo's secret)
    assert server6.read_file("/etc/ha.d/haresources") == lab_file("haresources.drbd-mysql")
    res = server6.read_file("/etc/drbd.d/mysqldata.res")
    changed = scene.diff_lines(lab_file("drbd-mysqldata.res"), res)
    assert changed[0].startswith("+  net { cram-hmac-alg sha1; shared-secret ")
    assert changed[1:] == ["-    disk      /dev/vdb;", f"+    disk      {scene.BACKING};"]

    # server5 is down; server6 alone holds the VIP, the volume is Primary there and
    # mounted where MariaDB keeps its data.
    assert not lab.host("server5").is_up()
    vip = lab.address("vip")
    assert any(a.split("/")[0] == vip for a in lab.addresses("server6"))
    role = server6.run(vigil_command("volume", "role", "mysqldata"))
    assert role.stdout.strip().startswith("Primary")
    mounts = server6.run(["cat", "/proc/self/mountinfo"]).stdout
    assert any(line.split()[4] == "/var/lib/mysql" and " - ext4 /dev/drbd1 " in line
               for line in mounts.splitlines())

    # The rows are there, through the VIP: the ones before the crash and after it.
    with lab.host("client").entered():
        connection = pymysql.connect(host=vip, user="app", password="app-pw", database="app",
                                     connect_timeout=5)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), MIN(id) FROM numbers")
        count, first = cursor.fetchone()
    assert first == 1 and count >= scene.ROWS_BEFORE + scene.ROWS_AFTER

    text = played.timeline
    assert "FAULT: server5 crashes" in text and "replication:SyncSource" in text
    assert "-    disk      /dev/vdb;" in text

    lab.down()
    assert lab.leftovers() == []
    left = [identity.name for identity in result.loops if loopdev.is_ours(identity)]
    for identity in result.loops:
        loopdev.force_detach(identity)
    assert not left, f"loop devices left attached: {left}"
