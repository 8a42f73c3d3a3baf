"""The ECMP lab's router and its BGP sessions (`ecmp` topology).

The router runs BIRD 2: one eBGP session per director (the directors in AS
65001, the router in AS 65000), every route accepted, and the kernel protocol's
`merge paths` installing equal routes from several directors as one multipath
route; `fib_multipath_hash_policy=1` hashes flows on their L4 ports. Each
director runs ExaBGP with `vigil director -d --announce exabgp` as its API
process. BGP timers are short (hold 3 s, keepalive 1 s, BIRD's minimum hold) so
that a director that dies silently is dropped within 3 s; a director that stops
cleanly withdraws at once.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

from vigil.kernel.netlink import iproute
from vigil.lab.host import Host, LabProcess
from vigil.lab.lab import Lab

ROUTER_AS = 65000
DIRECTOR_AS = 65001
#: BGP hold time on both sides (BIRD takes 3 s at the least); keepalives every second
HOLD = 3
BIRD_CONF = "/etc/bird/bird.conf"
BIRD_SOCKET = "/run/bird/bird.ctl"
EXABGP_CONF = "/etc/exabgp/exabgp.conf"


def bird_config(router_id: str, neighbors: Sequence[str], hold: int = HOLD) -> str:
    """BIRD 2: eBGP to every director, ECMP into the kernel table."""
    sessions = "\n".join(
        f"protocol bgp d{i} from directors {{ neighbor {address} as {DIRECTOR_AS}; }}"
        for i, address in enumerate(neighbors, start=1))
    return f"""\
router id {router_id};
log stderr all;
protocol device {{ scan time 10; }}
protocol kernel {{
    ipv4 {{ import none; export all; }};
    merge paths on;
}}
template bgp directors {{
    local as {ROUTER_AS};
    hold time {hold};
    keepalive time 1;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 {{ import all; export none; }};
}}
{sessions}
"""


def exabgp_config(local: str, router: str, argv: Sequence[str], hold: int = HOLD) -> str:
    """ExaBGP 4.2 on a director: one session to the router, the director as its process."""
    run = " ".join(argv)
    return f"""\
process vigil-director {{
    run {run};
    encoder text;
}}
neighbor {router} {{
    router-id {local};
    local-address {local};
    local-as {DIRECTOR_AS};
    peer-as {ROUTER_AS};
    hold-time {hold};
    api {{ processes [ vigil-director ]; }}
}}
"""


def exabgp_env() -> dict[str, str]:
    """ExaBGP as root in the lab host, logging to stderr, not restarting a director
    that stopped (a stopped director stays stopped, its routes withdrawn)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "exabgp.daemon.user": "root",
        "exabgp.daemon.drop": "false",
        "exabgp.log.destination": "stderr",
        "exabgp.api.respawn": "false",
        "exabgp.api.ack": "true",
    }


def start_router(router: Host, neighbors: Sequence[str], hold: int = HOLD) -> LabProcess:
    """Forwarding with an L4 multipath hash, and BIRD in the foreground."""
    router.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
                "net.ipv4.fib_multipath_hash_policy=1"])
    router_id = _first_address(router, "lan")
    router.write_file(BIRD_CONF, bird_config(router_id, neighbors, hold))
    router.run(["mkdir", "-p", str(Path(BIRD_SOCKET).parent)])
    return router.spawn(["bird", "-f", "-c", BIRD_CONF, "-s", BIRD_SOCKET], name="bird")


def director_bird_config(local: str, router: str, routes_file: str,
                         hold: int = HOLD) -> str:
    """BIRD 2 on a director (`--announce bird`): one eBGP session to the router that
    exports the routes of vigil's static protocol, the file vigil writes included."""
    return f"""\
router id {local};
log stderr all;
protocol device {{ scan time 10; }}
include "{routes_file}";
protocol bgp uplink {{
    local {local} as {DIRECTOR_AS};
    neighbor {router} as {ROUTER_AS};
    hold time {hold};
    keepalive time 1;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 {{ import none; export where proto = "vigil_announce4"; }};
}}
"""


def start_director_bird(director: Host, router: str, routes_file: str, empty_routes: str,
                        hold: int = HOLD) -> LabProcess:
    """BIRD on a director, its routes file present (nothing announced) before it starts."""
    local = _first_address(director, "lan")
    director.write_file(routes_file, empty_routes)
    director.write_file(BIRD_CONF, director_bird_config(local, router, routes_file, hold))
    director.run(["mkdir", "-p", str(Path(BIRD_SOCKET).parent)])
    return director.spawn(["bird", "-f", "-c", BIRD_CONF, "-s", BIRD_SOCKET], name="bird")


def start_speaker(director: Host, router: str, director_argv: Sequence[str],
                  hold: int = HOLD) -> LabProcess:
    """ExaBGP on a director, running `director_argv` as its API process."""
    local = _first_address(director, "lan")
    director.write_file(EXABGP_CONF, exabgp_config(local, router, director_argv, hold))
    return director.spawn(["exabgp", EXABGP_CONF], name="exabgp", env=exabgp_env())


def _first_address(host: Host, segment: str) -> str:
    return host.spec.port(segment).addresses[0].split("/")[0]


def prepare(lab: Lab, vip: str) -> LabProcess:
    """The `ecmp` topology's network: default routes through the router (real servers
    answer the client straight through it, as DR wants), the VIP on `lo` of every
    director and of no link (arp_ignore/arp_announce: the router routes it, nobody
    answers ARP for it), and BIRD on the router with a session to every director.
    The directors' ExaBGP and `vigil director` are the caller's (`start_speaker`)."""
    router = lab.host("router")
    lan_gateway, wan_gateway = _first_address(router, "lan"), _first_address(router, "wan")
    directors = [h for h in lab.hosts.values() if h.name.startswith("dir")]
    for host in lab.hosts.values():
        if host is router:
            continue
        segment = "wan" if any(p.segment == "wan" for p in host.spec.ports) else "lan"
        host.run(["ip", "route", "replace", "default", "via",
                  wan_gateway if segment == "wan" else lan_gateway])
    for director in directors:
        director.run(["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1",
                      "net.ipv4.conf.all.arp_announce=2"])
        director.run(["ip", "addr", "replace", f"{vip}/32", "dev", "lo"])
    return start_router(router, [_first_address(d, "lan") for d in directors])


def nexthops(host: Host, prefix: str) -> list[str]:
    """The gateways of `host`'s kernel route to `prefix` (main table), read by netlink:
    one per path of a multipath route; empty without a route."""
    network = ipaddress.ip_network(prefix)
    found: list[str] = []
    with iproute(host.netns_path) as ipr:
        for route in ipr.get_routes(family=10 if network.version == 6 else 2):
            if (route.get_attr("RTA_TABLE") != 254 or route["dst_len"] != network.prefixlen
                    or route.get_attr("RTA_DST") != str(network.network_address)):
                continue
            gateway = route.get_attr("RTA_GATEWAY")
            if gateway:
                found.append(gateway)
            for path in route.get_attr("RTA_MULTIPATH") or []:
                gateway = path.get_attr("RTA_GATEWAY")
                if gateway:
                    found.append(gateway)
    return sorted(found)
