"""A real three-node Corosync 3 + Pacemaker cluster in lab hosts, configured by `vigil export`.

server5, server6 and server7 each run Debian's corosync and pacemakerd (PIDs
the test started, in the host's own namespaces) with the corosync.conf and CIB
that `vigil export pacemaker --nodes server5,server6,server7` makes of the
tutorial's LVS setup (`IPaddr::VIP/24/eth0 ldirectord httpd`, ldirectord.cf, a
ping node). rs1 and rs2 are the LVS-DR real servers; the client asks through
the VIP. Observed from outside: which host's eth0 has the VIP, and whose
answer comes back through it.
test_pacemaker_mysql_lab.py runs the replicated MySQL setup on the same cluster.
"""

from __future__ import annotations

import shutil

import pytest

from vigil.lab import Lab
from vigil.testing import wait_until
from vigil.testing.pacemaker_cluster import NODES, PacemakerCluster, crash_and_time, topology

pytestmark = pytest.mark.lab

#: from power-on to the group answering: corosync membership, the DC election
#: (dc-deadtime, shortened), the start of the ping clone and of the group
START_TIMEOUT = 90.0
#: a crash: token (1 s) + consensus, the new membership, the DC's transition
MOVE_TIMEOUT = 60.0


@pytest.fixture
def cluster(lab_factory):
    if shutil.which("pacemakerd") is None or shutil.which("corosync") is None:
        pytest.skip("pacemaker or corosync is not installed")
    cluster = PacemakerCluster(lab_factory(topology()))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_group_runs_on_one_node_and_a_crash_moves_it(cluster):
    holder = cluster.wait_for_group(START_TIMEOUT)
    assert holder == "server5"  # haresources' home node: the exported location score
    assert cluster.holders() == [holder]
    survivor, seconds = crash_and_time(cluster, holder, MOVE_TIMEOUT)
    print(f"pacemaker: {holder} crashed; the client served through the VIP on {survivor}"
          f" {seconds:.2f} s later")
    assert survivor in NODES and survivor != holder
    assert cluster.holders() == [survivor]


def test_a_node_cut_off_from_the_others_stops_its_resources(cluster):
    lab: Lab = cluster.lab
    holder = cluster.wait_for_group(START_TIMEOUT)
    others = [n for n in NODES if n != holder]
    for other in others:  # it still reaches the client, the real servers and the ping node
        lab.partition(holder, other)
    wait_until(lambda: not cluster.quorate(holder), MOVE_TIMEOUT, f"{holder} losing quorum")
    wait_until(lambda: holder not in cluster.holders(), MOVE_TIMEOUT,
               lambda: f"{holder} (no quorum) still has the VIP\n" + cluster.diagnose())
    survivor = cluster.wait_for_group(MOVE_TIMEOUT, not_on=holder)
    assert survivor in others
    assert cluster.holders() == [survivor]
    assert all(cluster.quorate(n) for n in others)
    assert not cluster.quorate(holder)
    # the VIP did not leave for want of the ping node: the cut-off node still reaches it
    ping = lab.host(holder).run(["ping", "-c1", "-W1", "198.51.100.250"], check=False)
    assert ping.returncode == 0, ping.stdout

