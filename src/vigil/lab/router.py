"""The ECMP lab's router and its BGP sessions (`ecmp` topology).

The router runs BIRD 2: one eBGP session per director (the directors in AS
65001, the router in AS 65000), every route accepted, and the kernel protocol's
`merge paths` installing equal routes from several directors as one multipath
route (or, with `resilient`, as a resilient nexthop group: `vigil.lab.resilient`);
`fib_multipath_hash_policy=1` hashes flows on their L4 ports. Each
director runs ExaBGP with `vigil director -d --announce exabgp` as its API
process. BGP timers are short (hold 3 s, keepalive 1 s, BIRD's minimum hold) so
that a director that dies silently is dropped within 3 s; a director that stops
cleanly withdraws at once.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigil.kernel.netlink import iproute
from vigil.lab.host import Host, LabProcess
from vigil.lab.lab import Lab
from vigil.lab.resilient import STAGING_TABLE, route_paths

ROUTER_AS = 65000
DIRECTOR_AS = 65001
#: BGP hold time on both sides (BIRD takes 3 s at the least); keepalives every second
HOLD = 3
#: BFD, where a topology asks for it: 100 ms between packets, down after 3 missed
BFD_INTERVAL_MS = 100
BFD_MULTIPLIER = 3
BIRD_CONF = "/etc/bird/bird.conf"
BIRD_SOCKET = "/run/bird/bird.ctl"
EXABGP_CONF = "/etc/exabgp/exabgp.conf"
HASH_SEED = "/proc/sys/net/ipv4/fib_multipath_hash_seed"


def _bfd_protocol(bfd: bool) -> str:
    """BIRD's BFD protocol on every interface, or nothing."""
    if not bfd:
        return ""
    return (f'protocol bfd {{ interface "*" {{ min rx interval {BFD_INTERVAL_MS} ms; '
            f"min tx interval {BFD_INTERVAL_MS} ms; multiplier {BFD_MULTIPLIER}; }}; }}\n")


def _session_timers(hold: int, bfd: bool) -> str:
    return (f"    hold time {hold};\n    keepalive time 1;\n    connect retry time 1;\n"
            f"    error wait time 1, 5;\n    bfd {'on' if bfd else 'off'};\n")


def bird_config(router_id: str, neighbors: Sequence[str], hold: int = HOLD,
                bfd: bool = False, kernel_table: int | None = None) -> str:
    """BIRD 2: eBGP to every director (an IPv4 session per IPv4 address in
    `neighbors`, an IPv6 one per IPv6 address), ECMP into the kernel tables; with
    `bfd`, each session is also watched by BFD, which drops it within 0.3 s of
    silence. IPv6 routes go through the directors' global addresses, as IPv4 ones."""
    versions = [ipaddress.ip_address(a).version for a in neighbors]
    sessions = "\n".join(
        f"protocol bgp d{i} from directors{'6' if version == 6 else ''} "
        f"{{ neighbor {address} as {DIRECTOR_AS}; }}"
        for i, (address, version) in enumerate(zip(neighbors, versions, strict=True), start=1))
    parts = [f"router id {router_id};", "log stderr all;", "protocol device { scan time 10; }",
             _bfd_protocol(bfd).rstrip()]
    for version in sorted(set(versions)):
        suffix = "6" if version == 6 else ""
        nexthop = " next hop prefer global;" if version == 6 else ""
        table = f"    kernel table {kernel_table};\n" if kernel_table is not None else ""
        parts += [f"protocol kernel {{\n    ipv{version} {{ import none; export all; }};\n"
                  f"    merge paths on;\n{table}}}",
                  f"template bgp directors{suffix} {{\n    local as {ROUTER_AS};\n"
                  + _session_timers(hold, bfd)
                  + f"    ipv{version} {{ import all; export none;{nexthop} }};\n}}"]
    parts.append(sessions)
    return "\n".join(part for part in parts if part) + "\n"


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


def start_router(router: Host, neighbors: Sequence[str], hold: int = HOLD,
                 bfd: bool = False, resilient: bool = False) -> LabProcess:
    """Forwarding with an L4 multipath hash, and BIRD in the foreground; with
    `resilient`, BIRD's routes go through resilient nexthop groups
    (`vigil.lab.resilient`, run on the router beside BIRD)."""
    router.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
                "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.fib_multipath_hash_policy=1"])
    if Path(HASH_SEED).exists():  # Linux 6.11+: the same flow takes the same path every run
        router.run(["sysctl", "-q", "-w", f"net.ipv4.fib_multipath_hash_seed={ROUTER_AS}"])
    router_id = first_address(router, "lan")
    table = STAGING_TABLE if resilient else None
    router.write_file(BIRD_CONF, bird_config(router_id, neighbors, hold, bfd, table))
    router.run(["mkdir", "-p", str(Path(BIRD_SOCKET).parent)])
    if resilient:
        router.spawn([sys.executable, "-m", "vigil.lab.resilient", "--table", str(table)],
                     name="resilient")
    return router.spawn(["bird", "-f", "-c", BIRD_CONF, "-s", BIRD_SOCKET], name="bird")


def director_bird_config(local: str, router: str, routes_file: str,
                         hold: int = HOLD, bfd: bool = False, local6: str | None = None,
                         router6: str | None = None) -> str:
    """BIRD 2 on a director (`--announce bird`): an eBGP session to the router that
    exports the routes of vigil's static protocol, the file vigil writes included;
    with `router6`, an IPv6 session beside it for the IPv6 VIPs."""
    sessions = [("uplink", local, router, 4)]
    if router6 is not None and local6 is not None:
        sessions.append(("uplink6", local6, router6, 6))
    protocols = "\n".join(
        f"protocol bgp {name} {{\n    local {mine} as {DIRECTOR_AS};\n"
        f"    neighbor {theirs} as {ROUTER_AS};\n" + _session_timers(hold, bfd)
        + f'    ipv{version} {{ import none; export where proto = "vigil_announce{version}"; }};'
        "\n}" for name, mine, theirs, version in sessions)
    return (f"router id {local};\nlog stderr all;\nprotocol device {{ scan time 10; }}\n"
            f'{_bfd_protocol(bfd)}include "{routes_file}";\n{protocols}\n')


def start_director_bird(director: Host, router: str, routes_file: str, empty_routes: str,
                        hold: int = HOLD, bfd: bool = False,
                        router6: str | None = None) -> LabProcess:
    """BIRD on a director, its routes file present (nothing announced) before it starts;
    with `router6`, an IPv6 session to the router too."""
    local = first_address(director, "lan")
    director.write_file(routes_file, empty_routes)
    director.write_file(BIRD_CONF, director_bird_config(
        local, router, routes_file, hold, bfd, _address6(director, "lan"), router6))
    director.run(["mkdir", "-p", str(Path(BIRD_SOCKET).parent)])
    return director.spawn(["bird", "-f", "-c", BIRD_CONF, "-s", BIRD_SOCKET], name="bird")


def start_speaker(director: Host, router: str, director_argv: Sequence[str],
                  hold: int = HOLD) -> LabProcess:
    """ExaBGP on a director, running `director_argv` as its API process."""
    local = first_address(director, "lan")
    director.write_file(EXABGP_CONF, exabgp_config(local, router, director_argv, hold))
    return director.spawn(["exabgp", EXABGP_CONF], name="exabgp", env=exabgp_env())


def first_address(host: Host, segment: str = "lan") -> str:
    """A host's IPv4 address on a segment (what BGP sessions and nexthops use)."""
    return host.spec.port(segment).addresses[0].split("/")[0]


def _address6(host: Host, segment: str) -> str:
    return next(a.split("/")[0] for a in host.spec.port(segment).addresses if ":" in a)


def prepare(lab: Lab, vip: str, bfd: bool = False, vip6: str | None = None,
            resilient: bool = False) -> LabProcess:
    """The `ecmp` topology's network: default routes through the router (real servers
    answer the client straight through it, as DR wants), the VIP on `lo` of every
    director and of no link (arp_ignore/arp_announce: the router routes it, nobody
    answers ARP for it), and BIRD on the router with a session to every director
    (watched by BFD with `bfd`; its routes through resilient nexthop groups with
    `resilient`). With `vip6`, the same for IPv6: default routes, the
    IPv6 VIP on the directors' `lo` and an IPv6 session to each director. The
    directors' speakers and `vigil director` are the caller's (`start_speaker`,
    `start_director_bird`)."""
    router = lab.host("router")
    directors = [h for h in lab.hosts.values() if h.name.startswith("dir")]
    for host in lab.hosts.values():
        if host is not router:
            prepare_host(lab, host, vip, vip6)
    neighbors = [first_address(d, "lan") for d in directors]
    if vip6 is not None:
        neighbors += [_address6(d, "lan") for d in directors]
    return start_router(router, neighbors, bfd=bfd, resilient=resilient)


def prepare_host(lab: Lab, host: Host, vip: str | None, vip6: str | None = None) -> None:
    """One host's part of `prepare` (again after the host boots: a boot starts its
    network afresh): the default routes, and on a director the VIPs on `lo` (none
    with `vip` None: an active/standby pair moves the VIP on its link instead)."""
    router = lab.host("router")
    segment = "wan" if any(p.segment == "wan" for p in host.spec.ports) else "lan"
    host.run(["ip", "route", "replace", "default", "via", first_address(router, segment)])
    if vip6 is not None:
        host.run(["ip", "-6", "route", "replace", "default", "via",
                  _address6(router, segment)])
    if host.name.startswith("dir") and vip is not None:
        host.run(["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1",
                  "net.ipv4.conf.all.arp_announce=2"])
        host.run(["ip", "addr", "replace", f"{vip}/32", "dev", "lo"])
        if vip6 is not None:
            host.run(["ip", "addr", "replace", f"{vip6}/128", "dev", "lo"])


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
            found += [gateway for gateway, _ in route_paths(route)]
    return sorted(found)


def flow_paths(router: Host, source: str, source_ports: Sequence[int], destination: str,
               port: int, segment: str = "wan") -> dict[int, str]:
    """Which gateway the router forwards each TCP flow `source:sport -> destination:port`
    arriving on `segment` to (`ip route get` with the flow's ports, which hashes it as
    forwarding does); flows without a route are left out."""
    iif = router.spec.port(segment).ifname
    family = "-6 " if ":" in destination else ""
    paths: dict[int, str] = {}
    remaining = list(source_ports)
    while remaining:
        lines = [f"{family}route get {destination} from {source} iif {iif} ipproto tcp "
                 f"sport {sport} dport {port}" for sport in remaining]
        # Without -force the batch stops at the first flow with no route: the
        # answers are those of the flows before it, in order.
        done = router.run(["ip", "-j", "-batch", "-"], input="\n".join(lines) + "\n",
                          check=False)
        answers = json_values(done.stdout)
        for sport, answer in zip(remaining, answers, strict=False):
            gateway = answer[0].get("gateway") if isinstance(answer, list) and answer \
                and isinstance(answer[0], dict) else None
            if isinstance(gateway, str):
                paths[sport] = gateway
        remaining = remaining[len(answers) + 1:]
    return paths


def json_values(text: str) -> list[Any]:
    """The JSON values `ip -j -batch` printed one after the other (what is not JSON
    ends the list)."""
    decoder, at, values = json.JSONDecoder(), 0, []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError:  # not JSON, or a number past Python's digit limit
            return values
        values.append(value)


def group_buckets(router: Host, prefix: str) -> dict[str, int]:
    """How many buckets of the resilient group the router's route to `prefix` goes
    through each gateway holds (empty without such a route). Reading buckets does
    not use them, unlike a route lookup, which keeps a bucket busy."""
    family = ["-6"] if ":" in prefix else []
    routes = json_values(router.run(["ip", "-j", *family, "route", "show", prefix],
                                     check=False).stdout)
    group = next((r.get("nhid") for found in routes if isinstance(found, list)
                  for r in found if isinstance(r, dict) and "nhid" in r), None)
    if not isinstance(group, int):
        return {}
    gateways = {n["id"]: n.get("gateway") for found in json_values(
        router.run(["ip", "-j", "nexthop", "show"], check=False).stdout)
        if isinstance(found, list) for n in found if isinstance(n, dict) and "id" in n}
    counts: dict[str, int] = {}
    for found in json_values(router.run(["ip", "-j", "nexthop", "bucket", "show", "id",
                                          str(group)], check=False).stdout):
        for bucket in found if isinstance(found, list) else []:
            gateway = gateways.get(bucket.get("bucket", {}).get("nhid"))
            if isinstance(gateway, str):
                counts[gateway] = counts.get(gateway, 0) + 1
    return counts
