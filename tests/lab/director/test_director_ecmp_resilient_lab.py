"""Active-active directors behind a router with resilient nexthop groups.

The lab's router (`prepare(..., resilient=True)`) installs BIRD's multipath
route to the VIP as a resilient nexthop group. When a director withdraws, only
the flows the router sent it move to another director; the flows of the
directors that stay keep their path (with hash-threshold multipath, withdrawing
the first of three nexthops moves a sixth of the others' flows). When it comes
back, the group gives it buckets no flow used lately (a bucket in use stays
where it is), so it carries new flows again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "dataplane"))
from dataplane_lab_support import HttpConnection, real_servers, vigil
from director_lab_support import ECMP_DIRECTORS as DIRECTORS
from director_lab_support import ECMP_ROUTER as ROUTER
from director_lab_support import ecmp_nexthops as announced

from vigil.director.speaker import BIRD_FILE, bird_routes
from vigil.lab.router import (
    first_address,
    flow_paths,
    group_buckets,
    prepare,
    start_director_bird,
)
from vigil.lab.seed import lab_file
from vigil.lab.topology import ecmp_topology
from vigil.testing import vigil_command, wait_until

pytestmark = pytest.mark.lab

VIP = "198.51.100.100"
#: Flows looked up on the router (its own hash, as forwarding does)
FLOW_PORTS = range(43000, 43090)
#: Flows first looked up after dir1's return (the others were in use a moment ago,
#: and the group keeps a bucket in use where it is)
FRESH_PORTS = range(43200, 43290)
#: Flows opened for real, kept alive across the change
KEPT_PORTS = range(43100, 43112)


def test_a_withdrawn_director_moves_only_its_own_flows(lab_factory):
    lab = lab_factory(ecmp_topology(3))
    prepare(lab, VIP, resilient=True)
    real_servers(lab)
    for name in DIRECTORS:
        director = lab.host(name)
        director.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
        start_director_bird(director, ROUTER, BIRD_FILE, bird_routes([]))
        director.spawn(vigil_command("director", "-d", "--announce", "bird", "--backend",
                                     "nftables", "start"), name="director")
    wait_until(lambda: announced(lab) == sorted(DIRECTORS.values()), 45,
               "three nexthops for the VIP on the router", interval=0.2)
    router, client = lab.host("router"), first_address(lab.host("client"), "wan")
    groups = router.run(["ip", "-j", "nexthop", "show", "groups"]).stdout
    assert '"type":"resilient"' in groups, groups

    def paths() -> dict[int, str]:
        return flow_paths(router, client, FLOW_PORTS, VIP, 80)

    before = paths()
    print(f"buckets: {group_buckets(router, f'{VIP}/32')}")
    assert set(before.values()) == set(DIRECTORS.values()), before
    connections = [HttpConnection(lab.host("client"), VIP, source_port=p) for p in KEPT_PORTS]
    first = [c.get() for c in connections]

    vigil(lab.host("dir1"), "director", "drain")
    wait_until(lambda: announced(lab) == [DIRECTORS["dir2"], DIRECTORS["dir3"]], 15,
               "dir1's nexthop withdrawn by drain", interval=0.1)
    after = paths()
    assert set(after) == set(before)
    moved = sorted(p for p in before if before[p] != DIRECTORS["dir1"] and after[p] != before[p])
    assert not moved, f"flows of dir2 and dir3 moved when dir1 withdrew: {moved}"
    assert all(after[p] != DIRECTORS["dir1"] for p in before)
    assert [c.get() for c in connections] == first

    vigil(lab.host("dir1"), "director", "undrain")
    wait_until(lambda: announced(lab) == sorted(DIRECTORS.values()), 15,
               "dir1's nexthop back after undrain", interval=0.1)
    # buckets go to dir1 once idle (looking flows up would keep them busy: count them)
    wait_until(lambda: group_buckets(router, f"{VIP}/32").get(DIRECTORS["dir1"], 0) > 0, 15,
               "buckets of the group given back to dir1 once idle", interval=0.2)
    print(f"buckets after undrain: {group_buckets(router, f'{VIP}/32')}")
    assert DIRECTORS["dir1"] in flow_paths(router, client, FRESH_PORTS, VIP, 80).values()
    assert [c.get() for c in connections] == first
    for connection in connections:
        connection.close()
