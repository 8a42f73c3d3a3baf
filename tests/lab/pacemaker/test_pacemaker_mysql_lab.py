"""The tutorial's replicated MySQL setup on a real three-node Corosync + Pacemaker cluster.

`vigil export pacemaker --nodes server5,server6,server7` of the tutorial's
`IPaddr drbddisk::mysqldata Filesystem mysqld` and its DRBD file: the volume,
with disks on server5 and server6 only (no `on` section for server7), as a
promotable ocf:vigil:volume clone, the group following its Promoted instance
(vigil.testing.pacemaker_cluster runs the cluster; the volume and MariaDB's
data directory are prepared as the demo's replicated scene does). server5
crashes: MariaDB answers through the VIP on server6, with every row committed
before the crash.
"""

from __future__ import annotations

import shutil
import time

import pytest

from vigil.demo import replication_scene
from vigil.demo.timeline import Timeline
from vigil.lab import Lab
from vigil.testing import wait_until
from vigil.testing.pacemaker_cluster import PacemakerCluster, topology

pytestmark = pytest.mark.lab

#: from power-on to MariaDB answering: membership, DC election, promotion, mount, mysqld
START_TIMEOUT = 90.0
#: a crash: token + consensus, the new DC, promotion on server6, the mount, mysqld
MOVE_TIMEOUT = 60.0

ROWS = 50


def mariadb(host, sql: str):
    return host.run(["mariadb", "-N", "-e", sql], check=False, timeout=30)


@pytest.fixture
def mysql_cluster(lab_factory):
    if shutil.which("pacemakerd") is None or shutil.which("corosync") is None:
        pytest.skip("pacemaker or corosync is not installed")
    lab = lab_factory(topology())
    result = replication_scene.ReplicationResult("pacemaker")
    timeline = Timeline()
    assert replication_scene.configure(lab, timeline, result), result.problems
    assert replication_scene.prepare_volume(lab, timeline, result), result.problems
    res = lab.host("server5").read_file(f"/etc/drbd.d/{replication_scene.RESOURCE}.res")
    cluster = PacemakerCluster(lab, haresources="haresources.drbd-mysql", drbd_res=res)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_replicated_mysql_group_moves_with_its_rows(mysql_cluster):
    cluster = mysql_cluster
    lab: Lab = cluster.lab
    client = lab.host("client")
    vip = lab.address("vip")
    server5 = lab.host("server5")
    wait_until(lambda: mariadb(server5, "SELECT 1").returncode == 0, START_TIMEOUT,
               lambda: "mysqld on server5\n" + cluster.diagnose())
    assert cluster.holders() == ["server5"]
    done = mariadb(server5, replication_scene.APP_SQL + "".join(
        f"INSERT INTO app.numbers VALUES ({i}, 'before');" for i in range(1, ROWS + 1)))
    assert done.returncode == 0, done.stderr
    assert replication_scene.answers(client, vip)
    crashed = time.monotonic()
    lab.crash("server5")
    wait_until(lambda: replication_scene.answers(client, vip), MOVE_TIMEOUT,
               lambda: "MariaDB answering through the VIP on server6\n" + cluster.diagnose(),
               interval=0.05)
    print(f"pacemaker: server5 crashed; MariaDB answering through the VIP on server6"
          f" {time.monotonic() - crashed:.2f} s later")
    assert cluster.holders() == ["server6"]  # server7 has no disk: the volume cannot go there
    server6 = lab.host("server6")
    assert mariadb(server6, "SELECT COUNT(*) FROM app.numbers").stdout.split() == [str(ROWS)]
    assert replication_scene.volume_status(server6)["role"] == "Primary"
