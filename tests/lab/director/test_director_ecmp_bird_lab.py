"""Active-active directors that announce the VIP through BIRD (`--announce bird`).

Each of three directors runs BIRD 2 with one eBGP session to the lab's router
(BIRD 2 too, ECMP) and `vigil director -d --announce bird`, which writes the VIP
as a static route into /etc/bird/vigil-announce.conf (included by the director's
bird.conf) and runs `birdc configure`. The router's kernel route to the VIP has
one nexthop per serving director; drain and stop take a director's nexthop away
while the client is served through the others. IPv6 likewise: each director's
BIRD has an IPv6 session beside the IPv4 one and announces the IPv6 VIP's /128.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "dataplane"))
from dataplane_lab_support import CONFIG_WITH_IPV6 as CONFIG
from dataplane_lab_support import VIP6, fetch, real_servers, vigil
from director_lab_support import ECMP_DIRECTORS as DIRECTORS
from director_lab_support import ECMP_ROUTER as ROUTER
from director_lab_support import ecmp_nexthops as announced

from vigil.director.speaker import BIRD_FILE, bird_routes
from vigil.lab.router import nexthops, prepare, start_director_bird
from vigil.lab.topology import ecmp_topology
from vigil.testing import vigil_command, wait_until

pytestmark = pytest.mark.lab

VIP = "198.51.100.100"
ROUTER6 = "2001:db8:0:1::fa"
DIRECTORS6 = {"dir1": "2001:db8:0:1::5", "dir2": "2001:db8:0:1::6", "dir3": "2001:db8:0:1::7"}
PORTS = range(42000, 42012)
def announced6(lab) -> list[str]:
    return nexthops(lab.host("router"), f"{VIP6}/128")


def test_three_directors_announce_the_vip_through_bird(lab_factory):
    lab = lab_factory(ecmp_topology(3))
    prepare(lab, VIP, vip6=VIP6)
    real_servers(lab, vips=(VIP, VIP6))
    for name in DIRECTORS:
        director = lab.host(name)
        director.write_file("/etc/ha.d/ldirectord.cf", CONFIG)
        start_director_bird(director, ROUTER, BIRD_FILE, bird_routes([]), router6=ROUTER6)
        director.spawn(vigil_command("director", "-d", "--announce", "bird", "--backend",
                                     "nftables", "start"), name="director")

    wait_until(lambda: announced(lab) == sorted(DIRECTORS.values()), 45,
               "three nexthops for the VIP on the router", interval=0.2)
    wait_until(lambda: announced6(lab) == sorted(DIRECTORS6.values()), 45,
               "three IPv6 nexthops for the IPv6 VIP on the router", interval=0.2)
    routes = lab.host("dir1").read_file(BIRD_FILE)
    assert f"route {VIP}/32 blackhole;" in routes
    assert f"route {VIP6}/128 blackhole;" in routes
    answers = [fetch(lab, VIP, source_port=port) for port in PORTS]
    assert set(answers) == {"rs1", "rs2"}
    assert {fetch(lab, VIP6, source_port=port) for port in PORTS} == {"rs1", "rs2"}

    vigil(lab.host("dir1"), "director", "drain")
    wait_until(lambda: announced(lab) == [DIRECTORS["dir2"], DIRECTORS["dir3"]], 15,
               "dir1's nexthop withdrawn by drain", interval=0.1)
    wait_until(lambda: announced6(lab) == [DIRECTORS6["dir2"], DIRECTORS6["dir3"]], 15,
               "dir1's IPv6 nexthop withdrawn by drain", interval=0.1)
    assert VIP not in lab.host("dir1").read_file(BIRD_FILE)
    assert {fetch(lab, VIP6, source_port=port) for port in PORTS} == {"rs1", "rs2"}
    assert {fetch(lab, VIP, source_port=port) for port in PORTS} == {"rs1", "rs2"}
    vigil(lab.host("dir1"), "director", "undrain")
    wait_until(lambda: announced(lab) == sorted(DIRECTORS.values()), 15,
               "dir1's nexthop back after undrain", interval=0.1)

    vigil(lab.host("dir2"), "director", "stop")
    wait_until(lambda: announced(lab) == [DIRECTORS["dir1"], DIRECTORS["dir3"]], 15,
               "dir2's nexthop withdrawn by its stop", interval=0.1)
    wait_until(lambda: announced6(lab) == [DIRECTORS6["dir1"], DIRECTORS6["dir3"]], 15,
               "dir2's IPv6 nexthop withdrawn by its stop", interval=0.1)
    assert {fetch(lab, VIP6, source_port=port) for port in PORTS} == {"rs1", "rs2"}
    assert {fetch(lab, VIP, source_port=port) for port in PORTS} == {"rs1", "rs2"}
    log = lab.host("dir2").read_file("/var/log/ldirectord.log")
    assert "announce.refused" not in log and "announce.speaker_gone" not in log
