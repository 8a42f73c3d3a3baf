"""Lab topologies as plain data: which hosts exist, on which segments, with which addresses.

A topology says nothing about namespaces; `vigil.lab.lab.Lab` builds it. The
`seed` topology is the tutorial's five machines, with its 172.25.254.0/24
addresses mapped into 198.51.100.0/24 (a documentation range that never leaves
the lab's namespaces).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.errors import UsageError

#: The seed's own network, and where the lab maps it.
SEED_NETWORK = ipaddress.ip_network("172.25.254.0/24")
LAB_NETWORK = ipaddress.ip_network("198.51.100.0/24")
LAB_NETWORK6 = ipaddress.ip_network("2001:db8:0:1::/64")
#: The second heartbeat segment between the two directors.
HB_NETWORK = ipaddress.ip_network("203.0.113.0/24")
HB_NETWORK6 = ipaddress.ip_network("2001:db8:0:2::/64")


@dataclass(frozen=True)
class Port:
    """One network interface of a host, plugged into a segment."""

    segment: str
    ifname: str
    addresses: tuple[str, ...]  # "198.51.100.5/24", "2001:db8:0:1::5/64"
    mac: str


@dataclass(frozen=True)
class HostSpec:
    """A machine: its short name, its `uname -n`, and its ports."""

    name: str
    hostname: str
    ports: tuple[Port, ...]
    role: str = ""

    def port(self, segment: str) -> Port:
        for port in self.ports:
            if port.segment == segment:
                return port
        raise UsageError(f"host {self.name} has no port on segment {segment}")


@dataclass(frozen=True)
class Topology:
    """Hosts and the segments (layer-2 switches) joining them."""

    name: str
    segments: tuple[str, ...]
    hosts: tuple[HostSpec, ...]
    #: Named addresses the scenes use (the VIP, the ping node, ...).
    addresses: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if name in (host.name, host.hostname):
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise UsageError(f"no host {name!r} in topology {self.name} (hosts: {known})")


def mac_for(segment_index: int, host_index: int) -> str:
    """A stable, locally administered MAC: easy to recognise in captures."""
    return f"02:76:6c:00:{segment_index:02x}:{host_index:02x}"


def map_seed_address(address: str) -> str:
    """172.25.254.X (the tutorial's network) -> 198.51.100.X (the lab's)."""
    ip = ipaddress.ip_address(address)
    if ip not in SEED_NETWORK:
        return address
    offset = int(ip) - int(SEED_NETWORK.network_address)
    return str(LAB_NETWORK.network_address + offset)


def lan_port(host_octet: int, host_index: int) -> Port:
    """A seed host's eth0 on the LAN, its address and MAC derived from its number."""
    return Port(
        segment="lan",
        ifname="eth0",
        addresses=(
            f"{LAB_NETWORK.network_address + host_octet}/{LAB_NETWORK.prefixlen}",
            f"{LAB_NETWORK6.network_address + host_octet}/{LAB_NETWORK6.prefixlen}",
        ),
        mac=mac_for(0, host_index),
    )


def hb_port(host_octet: int, host_index: int) -> Port:
    """A seed host's eth1 on the heartbeat segment, likewise."""
    return Port(
        segment="hb",
        ifname="eth1",
        addresses=(
            f"{HB_NETWORK.network_address + host_octet}/{HB_NETWORK.prefixlen}",
            f"{HB_NETWORK6.network_address + host_octet}/{HB_NETWORK6.prefixlen}",
        ),
        mac=mac_for(1, host_index),
    )


def seed_topology() -> Topology:
    """The tutorial's machines: two directors, two real servers, a client, a gateway."""
    plan = [
        # name, uname -n, last octet of 172.25.254.X, on the heartbeat link, role
        ("server5", "server5.example.com", 5, True, "director / heartbeat node"),
        ("server6", "server6.example.com", 6, True, "director / heartbeat node"),
        ("rs1", "rs1.example.com", 1, False, "real server (nginx)"),
        ("rs2", "rs2.example.com", 2, False, "real server (nginx)"),
        ("client", "client.example.com", 10, False, "client"),
        ("gateway", "gateway.example.com", 250, False, "gateway / ping node"),
    ]
    hosts = []
    for index, (name, hostname, octet, on_hb, role) in enumerate(plan, start=1):
        ports = [lan_port(octet, index)]
        if on_hb:
            ports.append(hb_port(octet, index))
        hosts.append(HostSpec(name=name, hostname=hostname, ports=tuple(ports), role=role))
    return Topology(
        name="seed",
        segments=("lan", "hb"),
        hosts=tuple(hosts),
        addresses={
            "vip": map_seed_address("172.25.254.100"),
            "ping": map_seed_address("172.25.254.250"),
        },
        description=(
            "the tutorial's hosts, 172.25.254.0/24 mapped to 198.51.100.0/24; "
            "segment 'lan' joins everyone, 'hb' is a second heartbeat link between the directors"
        ),
    )


def pair_topology() -> Topology:
    """The smallest heartbeat lab: the two directors, a client and the ping node."""
    seed = seed_topology()
    keep = {"server5", "server6", "client", "gateway"}
    return Topology(
        name="pair",
        segments=seed.segments,
        hosts=tuple(h for h in seed.hosts if h.name in keep),
        addresses=dict(seed.addresses),
        description="server5 and server6 with both links, a client and the ping node",
    )


#: The far side of the ECMP lab's router, where its client lives.
WAN_NETWORK = ipaddress.ip_network("203.0.113.0/24")
WAN_NETWORK6 = ipaddress.ip_network("2001:db8:0:3::/64")
#: The router's last octet on both segments of the ECMP lab.
ROUTER_OCTET = 250


def _port(segment: str, ifname: str, octet: int, networks, segment_index: int,
          host_index: int) -> Port:
    v4, v6 = networks
    return Port(segment=segment, ifname=ifname,
                addresses=(f"{v4.network_address + octet}/{v4.prefixlen}",
                           f"{v6.network_address + octet}/{v6.prefixlen}"),
                mac=mac_for(segment_index, host_index))


def ecmp_topology(directors: int = 3) -> Topology:
    """Active-active directors: a router (BIRD 2, `vigil.lab.router`) in front of N
    directors in DR mode that announce the VIP with BGP, two real servers behind them,
    and a client on the router's far side."""
    lan = (LAB_NETWORK, LAB_NETWORK6)
    wan = (WAN_NETWORK, WAN_NETWORK6)
    plan: list[tuple[str, int, tuple[str, ...], str]] = [
        ("router", ROUTER_OCTET, ("lan", "wan"), "router (BIRD 2, ECMP over the directors)"),
        *[(f"dir{i}", 4 + i, ("lan",), "director (announces the VIP with BGP)")
          for i in range(1, directors + 1)],
        ("rs1", 1, ("lan",), "real server (nginx)"),
        ("rs2", 2, ("lan",), "real server (nginx)"),
        ("client", 10, ("wan",), "client beyond the router"),
    ]
    hosts = []
    for index, (name, octet, segments, role) in enumerate(plan, start=1):
        ports = [_port(segment, f"eth{i}", octet, lan if segment == "lan" else wan,
                       0 if segment == "lan" else 1, index)
                 for i, segment in enumerate(segments)]
        hosts.append(HostSpec(name=name, hostname=f"{name}.example.com", ports=tuple(ports),
                              role=role))
    return Topology(
        name="ecmp",
        segments=("lan", "wan"),
        hosts=tuple(hosts),
        addresses={"vip": str(LAB_NETWORK.network_address + 100),
                   "router": str(LAB_NETWORK.network_address + ROUTER_OCTET),
                   "router-wan": str(WAN_NETWORK.network_address + ROUTER_OCTET)},
        description=(
            f"{directors} directors on 'lan' (198.51.100.5-) with rs1 and rs2, a router on "
            "'lan' and 'wan' (203.0.113.0/24) and the client on 'wan'"
        ),
    )


TOPOLOGIES: dict[str, Callable[[], Topology]] = {
    "seed": seed_topology,
    "pair": pair_topology,
    "ecmp": ecmp_topology,
}


def topology_named(name: str) -> Topology:
    try:
        return TOPOLOGIES[name]()
    except KeyError:
        known = ", ".join(sorted(TOPOLOGIES))
        raise UsageError(f"unknown topology {name!r} (known: {known})") from None
