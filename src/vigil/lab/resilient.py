"""The lab router's resilient nexthop groups: BIRD's ECMP routes, re-installed.

BIRD 2.0.12 installs a multipath route as a hash-threshold route: when a
director goes, the hash space is cut anew and flows of the directors that stay
move too. Linux's resilient nexthop groups (5.13+) move only the flows of the
nexthop that went, and give a new nexthop idle buckets only. No routing daemon
in Debian 12 installs them, so with `resilient` the lab's BIRD exports its
routes to a staging table no lookup uses, and this program, run on the router,
installs each of them in the main table as a route through a resilient group
of the same gateways (what a router with resilient hashing does in its FIB).

The planning is pure (`plan`); the shell polls the staging table by netlink and
applies a plan with `ip -batch` (pyroute2 has no nexthop-object messages).
"""

from __future__ import annotations

import argparse
import ipaddress
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.kernel.netlink import iproute

#: The kernel table BIRD exports to when the router installs resilient groups.
STAGING_TABLE = 200
#: Buckets per group (enough for an even spread over a handful of directors).
BUCKETS = 128
#: A bucket unused this long may go to a new nexthop; flows in use stay where they are.
IDLE_TIMER = 1
#: After this long out of balance, buckets move even if in use (the kernel's own limit).
UNBALANCED_TIMER = 30
#: How often the staging table is read.
POLL_SECONDS = 0.02
#: Nexthop and group ids: one range each, far from what anything else in the lab uses.
FIRST_NEXTHOP_ID = 1000
FIRST_GROUP_ID = 5000

#: A gateway as the kernel names it: its address and the interface it is reached on.
Gateway = tuple[str, str]


@dataclass
class Installed:
    """What the mirror has put in the kernel: nexthop ids per gateway, group ids
    per prefix, and each group's gateways."""

    nexthop_ids: dict[Gateway, int] = field(default_factory=dict)
    group_ids: dict[str, int] = field(default_factory=dict)
    groups: dict[str, frozenset[Gateway]] = field(default_factory=dict)


def plan(learned: Mapping[str, frozenset[Gateway]], installed: Installed) -> list[str]:
    """The `ip -batch` lines that make the main table route every learned prefix
    through a resilient group of its gateways, and drop the routes, groups and
    nexthops nothing needs any more. Updates `installed` to what they leave."""
    lines: list[str] = []
    for gateways in learned.values():
        for gateway in sorted(gateways):
            if gateway not in installed.nexthop_ids:
                ident = max(installed.nexthop_ids.values(), default=FIRST_NEXTHOP_ID - 1) + 1
                installed.nexthop_ids[gateway] = ident
                lines.append(f"nexthop replace id {ident} via {gateway[0]} dev {gateway[1]}")
    for prefix, gateways in sorted(learned.items()):
        if not gateways or installed.groups.get(prefix) == gateways:
            continue
        new = prefix not in installed.group_ids
        if new:
            installed.group_ids[prefix] = max(installed.group_ids.values(),
                                              default=FIRST_GROUP_ID - 1) + 1
        group = "/".join(str(i) for i in sorted(installed.nexthop_ids[g] for g in gateways))
        lines.append(f"nexthop replace id {installed.group_ids[prefix]} group {group} "
                     f"type resilient buckets {BUCKETS} idle_timer {IDLE_TIMER} "
                     f"unbalanced_timer {UNBALANCED_TIMER}")
        installed.groups[prefix] = gateways
        if new:
            family = "-6 " if ":" in prefix else ""
            lines.append(f"{family}route replace {prefix} nhid {installed.group_ids[prefix]}")
    for prefix in sorted(set(installed.group_ids) - {p for p, g in learned.items() if g}):
        family = "-6 " if ":" in prefix else ""
        lines.append(f"{family}route del {prefix}")
        lines.append(f"nexthop del id {installed.group_ids.pop(prefix)}")
        installed.groups.pop(prefix, None)
    used = {g for gateways in installed.groups.values() for g in gateways}
    for gateway in sorted(set(installed.nexthop_ids) - used):
        lines.append(f"nexthop del id {installed.nexthop_ids.pop(gateway)}")
    return lines


def available(release: str | None = None) -> bool:
    """Whether the kernel has resilient nexthop groups (Linux 5.13 and later)."""
    release = release or platform.release()
    numbers = release.split("-")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) >= (5, 13)
    except (IndexError, ValueError):
        return False


def route_paths(route: Any) -> list[tuple[str, int]]:
    """A kernel route's (gateway, output interface index) pairs, one per path of a
    multipath route, one for a plain route; none without a gateway."""
    paths = route.get_attr("RTA_MULTIPATH") or [route]
    found = []
    for path in paths:
        gateway = path.get_attr("RTA_GATEWAY")
        if gateway:
            found.append((gateway, path.get_attr("RTA_OIF") if path is route else path["oif"]))
    return found


def learned_routes(table: int) -> dict[str, frozenset[Gateway]]:
    """The staging table's routes: prefix -> the gateways of its paths."""
    found: dict[str, frozenset[Gateway]] = {}
    with iproute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        for family in (2, 10):
            for route in ipr.get_routes(family=family, table=table):
                if route.get_attr("RTA_TABLE") != table or not route.get_attr("RTA_DST"):
                    continue
                gateways = {(gateway, names[oif]) for gateway, oif in route_paths(route)
                            if oif in names}
                prefix = ipaddress.ip_network(
                    f"{route.get_attr('RTA_DST')}/{route['dst_len']}")
                found[str(prefix)] = frozenset(gateways)
    return found


def apply(lines: list[str]) -> bool:
    """Run a plan; a failed line is reported and the rest still run (`-force`).
    Whether every line succeeded."""
    if not lines:
        return True
    done = subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"ip -batch: {done.stderr.strip()}", file=sys.stderr, flush=True)
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=int, default=STAGING_TABLE)
    args = parser.parse_args(argv)
    installed = Installed()
    print(f"mirroring table {args.table} as resilient groups", flush=True)
    while True:
        lines = plan(learned_routes(args.table), installed)
        if lines:
            print("\n".join(lines), flush=True)
            if not apply(lines):
                # what the kernel holds is not what was planned: plan it all again
                # (every line replaces), from the same ids up
                installed = Installed()
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    raise SystemExit(main())
