"""Tables, hosts and kernel listings the data-path unit tests share."""

from __future__ import annotations

import copy
from typing import Any

from vigil.dataplane.plan import Environment, Route
from vigil.lvs.table import Forward, RealServer, ServiceKey, Table, VirtualService

VIP = "198.51.100.100"
RS1, RS2, RS3 = "198.51.100.1", "198.51.100.2", "198.51.100.3"
ENV = Environment.of(["eth0", "eth1"], {
    RS1: Route("eth0"), RS2: Route("eth0"), RS3: Route("eth0"),
    "127.0.0.1": Route("lo", local=True),
    "2001:db8:0:1::1": Route("eth0"), "2001:db8:0:1::2": Route("eth0"),
    "203.0.113.7": Route("eth1", gateway=True),
})


def seed_service(w1: int = 1, w2: int = 1, *extra: RealServer, scheduler: str = "rr",
                 **settings: Any) -> VirtualService:
    """The seed's virtual service (ldirectord.cf): rs1, rs2, direct routing."""
    reals = [RealServer(RS1, 80, w1), RealServer(RS2, 80, w2), *extra]
    return VirtualService(ServiceKey.tcp(VIP, 80), scheduler, reals=tuple(reals), **settings)


def seed_table(w1: int = 1, w2: int = 1, *extra: RealServer, **settings: Any) -> Table:
    return Table.of([seed_service(w1, w2, *extra, **settings)])


def masq(address: str, port: int = 80, weight: int = 1) -> RealServer:
    return RealServer(address, port, weight, Forward.MASQ)


def listing_of(commands: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """What `nft -j list table` would print after `commands` ran on an empty kernel."""
    tables: dict[str, dict[str, Any]] = {}
    for command in commands:
        (verb, body), = command.items()
        (kind, obj), = body.items()
        obj = copy.deepcopy(obj)
        family = obj["family"]
        state = tables.setdefault(family, {"objects": [], "maps": {}})
        if verb == "add" and kind == "element":
            state["maps"][obj["name"]].setdefault("elem", []).extend(obj["elem"])
        elif verb == "add" and kind == "map":
            entry = {"map": obj}
            state["maps"][obj["name"]] = obj
            state["objects"].append(entry)
        elif verb == "add" and kind == "chain":
            if "hook" in obj:
                obj.pop("dev", None)  # nft 1.0.6 does not list it
            state["objects"].append({"chain": obj})
        elif verb == "add":
            state["objects"].append({kind: obj})
        else:
            raise AssertionError(f"listing_of handles creation only, not {verb} {kind}")
    return {family: state["objects"] for family, state in tables.items()}
