"""Interfaces, addresses and routes of this node (pyroute2), and heartbeat's findif.

`find_interface` is pure: it gets the routing table as data and decides, as
heartbeat's findif does, which interface and prefix an address belongs on
when the configuration leaves them out. The async functions read and change
the kernel through netlink in the caller's network namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
IFF_UP = 0x1
IFA_F_NODAD = 0x02
AF_INET = 2
AF_INET6 = 10


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str
    up: bool


@dataclass(frozen=True)
class Address:
    ifindex: int
    ifname: str
    ip: str
    prefixlen: int
    broadcast: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Route:
    network: str  # "198.51.100.0/24"
    ifname: str
    scope: int = RT_SCOPE_LINK
    gateway: str | None = None
    table: int = RT_TABLE_MAIN
    kind: int = RTN_UNICAST
    prefsrc: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where an address goes: interface, prefix length and IPv4 broadcast."""

    ifname: str
    prefixlen: int
    broadcast: str | None


class NoInterface(Exception):
    """No interface holds a subnet for the address (heartbeat: "findif failed")."""


def default_broadcast(ip: str, prefixlen: int) -> str | None:
    """The subnet's highest address (heartbeat's default); none for IPv6, /31 and /32."""
    address = ipaddress.ip_address(ip)
    if address.version == 6 or prefixlen >= 31:
        return None
    return str(ipaddress.ip_network(f"{ip}/{prefixlen}", strict=False).broadcast_address)


def find_interface(ip: str, routes: list[Route], nic: str | None = None,
                   prefixlen: int | None = None, broadcast: str | None = None) -> Placement:
    """heartbeat's findif: the connected route holding `ip`, longest prefix first.

    IPv4 considers link-scope routes only (the subnets on the node's interfaces,
    never a route through a gateway); IPv6 considers routes without a gateway.
    Both ignore the default route. A given `nic` restricts the choice; a given
    `prefixlen` and `nic` together need no route at all.
    """
    address = ipaddress.ip_address(ip)
    if nic and prefixlen is not None:
        return Placement(nic, prefixlen, broadcast or default_broadcast(ip, prefixlen))
    best: Route | None = None
    best_len = -1
    for route in routes:
        network = ipaddress.ip_network(route.network, strict=False)
        if network.version != address.version or network.prefixlen == 0:
            continue
        if route.table != RT_TABLE_MAIN or route.kind != RTN_UNICAST or route.gateway:
            continue
        if address.version == 4 and route.scope != RT_SCOPE_LINK:
            continue
        if nic and route.ifname != nic:
            continue
        if address in network and network.prefixlen >= best_len:
            best, best_len = route, network.prefixlen
    if best is None:
        where = f" on {nic}" if nic else ""
        raise NoInterface(f"no interface{where} has a subnet holding {ip} (give ip/bits/iface)")
    chosen = prefixlen if prefixlen is not None else best_len
    return Placement(best.ifname, chosen, broadcast or default_broadcast(ip, chosen))


def free_label(ifname: str, used: set[str]) -> str:
    """IPaddr's alias name: the first `eth0:N` not in use (labels are at most 15 chars)."""
    for number in range(512):
        label = f"{ifname}:{number}"
        if label not in used:
            if len(label) > 15:
                break
            return label
    raise NoInterface(f"no free alias label on {ifname}")


# -- the kernel ------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def netlink() -> AsyncIterator[Any]:
    from pyroute2 import AsyncIPRoute

    async with AsyncIPRoute() as ipr:
        yield ipr


async def _collect(result: Any) -> list[Any]:
    return [item async for item in await result]


async def links(ipr: Any) -> list[Link]:
    found = []
    for msg in await _collect(ipr.get_links()):
        found.append(Link(index=msg["index"], name=msg.get("IFLA_IFNAME"),
                          mac=msg.get("IFLA_ADDRESS") or "00:00:00:00:00:00",
                          up=bool(msg["flags"] & IFF_UP)))
    return found


async def addresses(ipr: Any, known_links: list[Link] | None = None) -> list[Address]:
    """Every interface address; `known_links` (a links() just read) saves a dump."""
    names = {link.index: link.name
             for link in (known_links if known_links is not None else await links(ipr))}
    found = []
    for msg in await _collect(ipr.get_addr()):
        ip = msg.get("IFA_ADDRESS")
        if ip is None:
            continue
        if msg["family"] == AF_INET and msg.get("IFA_LOCAL"):
            ip = msg.get("IFA_LOCAL")
        found.append(Address(ifindex=msg["index"], ifname=names.get(msg["index"], "?"), ip=ip,
                             prefixlen=msg["prefixlen"], broadcast=msg.get("IFA_BROADCAST"),
                             label=msg.get("IFA_LABEL")))
    return found


async def routes(ipr: Any, known_links: list[Link] | None = None,
                 families: tuple[int, ...] = (AF_INET, AF_INET6)) -> list[Route]:
    """The routes of `families`; `known_links` (a links() just read) saves a dump."""
    names = {link.index: link.name
             for link in (known_links if known_links is not None else await links(ipr))}
    found = []
    for family in families:
        for msg in await _collect(ipr.route("dump", family=family)):
            dst = msg.get("RTA_DST") or ("0.0.0.0" if family == AF_INET else "::")
            oif = msg.get("RTA_OIF")
            if oif is None:
                continue
            found.append(Route(network=f"{dst}/{msg['dst_len']}", ifname=names.get(oif, "?"),
                               scope=msg["scope"], gateway=msg.get("RTA_GATEWAY"),
                               table=msg.get("RTA_TABLE", msg["table"]), kind=msg["type"],
                               prefsrc=msg.get("RTA_PREFSRC")))
    return found


def same_ip(a: str, b: str) -> bool:
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


async def holders(ipr: Any, ip: str) -> list[Address]:
    """Every interface address equal to `ip` (normally none or one)."""
    return [a for a in await addresses(ipr) if same_ip(a.ip, ip)]


#: neighbour states worth measuring a round trip against (reachable lately, or static)
_LIVE_NEIGHBOUR = 0x02 | 0x04 | 0x08 | 0x10 | 0x80  # REACHABLE STALE DELAY PROBE PERMANENT


async def neighbours(ipr: Any, ifindex: int, exclude: str = "") -> list[str]:
    """IPv4 neighbours the kernel knows on this interface, reachable ones first."""
    found: list[tuple[int, str]] = []
    for msg in await _collect(ipr.neigh("dump", ifindex=ifindex, family=AF_INET)):
        ip = msg.get("NDA_DST")
        state = msg["state"]
        if not ip or not state & _LIVE_NEIGHBOUR or ip == exclude or ip == "0.0.0.0":
            continue
        found.append((0 if state & 0x02 else 1, ip))
    return [ip for _, ip in sorted(found)]


async def link_by_name(ipr: Any, ifname: str) -> Link | None:
    for link in await links(ipr):
        if link.name == ifname:
            return link
    return None
