"""Read a `Plan` back from what the kernel lists (`nft -j list table ...`).

A restarted director adopts the data path it finds instead of rebuilding it:
recorded connections, slots and transitions stay as they are. The rule
comments say what the kernel cannot (scheduler, weights, retired servers),
the slot maps say who owns which slot and which slots are in transition,
and a learning rule says the previous director had not settled yet.

Adoption is all or nothing: the plan read back must render to exactly the
objects the kernel holds (names and map contents), otherwise `AdoptError`
and the caller rebuilds from scratch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vigil.dataplane.plan import (
    SLOTS,
    UNROUTED,
    WINDOW,
    Plan,
    RealPlan,
    Route,
    ServicePlan,
    Transition,
    real_token,
    service_token,
)
from vigil.dataplane.ruleset import (
    INET,
    LEARNING_COMMENT,
    NETDEV,
    STANDBY_COMMENT,
    TABLE,
    Ruleset,
    TableObjects,
    render,
)
from vigil.lvs.table import (
    Forward,
    Protocol,
    RealServer,
    ServiceKey,
    VirtualService,
)


class AdoptError(ValueError):
    """What the kernel holds is not a vigil data path this version can continue."""


def parse_service_comment(text: str) -> VirtualService:
    words = text.split()
    if words[:2] != ["vigil", "service"]:
        raise AdoptError(f"not a service comment: {text!r}")
    if words[2] == "fwm":
        key = ServiceKey.fwm(int(words[3]), int(words[4].lstrip("v")))
        rest = words[5:]
    else:
        key = ServiceKey(Protocol(words[2]), words[3], int(words[4]))
        rest = words[5:]
    scheduler, options = rest[0], rest[1:]
    persistent = netmask = None
    flags: tuple[str, ...] = ()
    ops = False
    for option in options:
        name, _, value = option.partition("=")
        if name == "persistent":
            persistent = int(value)
        elif name == "netmask":
            netmask = value or None
        elif name == "flags":
            flags = tuple(value.split(","))
        elif name == "ops":
            ops = True
    return VirtualService(key, scheduler, persistent, netmask, flags, ops)


def parse_real_comment(text: str) -> tuple[RealServer, bool]:
    words = text.split()
    if words[:2] != ["vigil", "real"]:
        raise AdoptError(f"not a real server comment: {text!r}")
    options = dict(w.partition("=")[::2] for w in words[5:])
    real = RealServer(words[2], int(words[3]), int(options.get("weight", 1)),
                      Forward(words[4]), int(options.get("upper") or 0),
                      int(options.get("lower") or 0))
    return real, "retired" in words[5:]


def _objects(listing: Iterable[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o[kind] for o in listing if kind in o]


def _route_of(expr: list[dict[str, Any]], forward: Forward) -> Route:
    for statement in expr:
        if "fwd" in statement:
            return Route(device=statement["fwd"]["dev"])
        if "dnat" in statement:
            return Route(device="?")  # NAT reaches it by routing; the device is not written
        if "redirect" in statement:
            return Route(local=True)
        if "accept" in statement:
            return Route(local=forward is not Forward.MASQ, device="?")
    return UNROUTED


def adopt(netdev: list[dict[str, Any]], inet: list[dict[str, Any]], now: float,
          window: float = WINDOW) -> Plan | None:
    """The plan the listings carry out (None: vigil holds nothing in the kernel)."""
    if not netdev and not inet:
        return None
    services: dict[str, VirtualService] = {}
    reals: dict[str, dict[str, RealPlan]] = {}
    learning = standby = False
    devices: list[str] = []
    for listing in (netdev, inet):
        for chain in _objects(listing, "chain"):
            if chain.get("hook") == "ingress" and chain["name"].startswith("in_"):
                devices.append(chain["name"][3:])
        rules_by_chain: dict[str, list[dict[str, Any]]] = {}
        for rule in _objects(listing, "rule"):
            rules_by_chain.setdefault(rule["chain"], []).append(rule)
        for chain_name, rules in rules_by_chain.items():
            for rule in rules:
                comment = rule.get("comment")
                if comment is None:
                    continue
                if comment == LEARNING_COMMENT:
                    learning = True
                elif comment == STANDBY_COMMENT:
                    standby = True
                elif comment.startswith("vigil service "):
                    service = parse_service_comment(comment)
                    services[service_token(service.key)] = service
                elif comment.startswith("vigil real "):
                    real, retired = parse_real_comment(comment)
                    prefix, _, token = chain_name.partition("__")
                    service_tok = prefix.split("_", 1)[1]
                    if token != real_token(real.key):
                        raise AdoptError(f"chain {chain_name} describes {real.key}")
                    known = reals.setdefault(service_tok, {})
                    route = _route_of(rule["expr"], real.forward)
                    previous = known.get(token)
                    if previous is not None and previous.route.device not in (None, "?"):
                        route = previous.route  # the netdev rule names the device
                    known[token] = RealPlan(real, route, retired)
    owners, transitions = _slots(netdev, inet, now + window)
    plans = []
    for token, service in sorted(services.items()):
        members = reals.get(token, {})
        current = [r.real for r in members.values() if not r.retired]
        service = service.with_reals(current)
        if service_token(service.key) != token:
            raise AdoptError(f"service {service.key} listed under {token}")
        plans.append(ServicePlan(
            service, tuple(sorted(members.values(), key=lambda r: r.token)),
            owners.get(token, ()), tuple(sorted(transitions.get(token, ()),
                                                key=lambda t: t.slot))))
    plan = Plan(tuple(plans), tuple(sorted(set(devices))), learning, standby)
    check_matches(plan, netdev, inet)
    return plan


def _slots(netdev: list[dict[str, Any]], inet: list[dict[str, Any]], until: float
           ) -> tuple[dict[str, tuple[str, ...]], dict[str, list[Transition]]]:
    owners: dict[str, tuple[str, ...]] = {}
    transitions: dict[str, list[Transition]] = {}
    for listing, prefix in ((netdev, "m_"), (inet, "nm_")):
        for vmap in _objects(listing, "map"):
            name = vmap["name"]
            if not name.startswith(prefix):
                continue
            token = name[len(prefix):]
            if token in owners:
                continue  # the netdev map says more (transitions) and comes first
            slots: list[str | None] = [None] * SLOTS
            for key, verdict in _elements(vmap):
                target = verdict["goto"]["target"]
                parts = target.split("__")
                if target.startswith("t_"):
                    legacy, new = parts[1], parts[2]
                    transitions.setdefault(token, []).append(Transition(key, legacy, until))
                    slots[key] = None if new == "none" else new
                else:
                    slots[key] = parts[1]
            if all(s is not None for s in slots):
                owners[token] = tuple(slots)  # type: ignore[arg-type]
            elif all(s is None for s in slots):
                owners[token] = ()  # no server takes new connections
            else:
                raise AdoptError(f"{name}: some slots have no owner")
    return owners, transitions


def _elements(vmap: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    out = []
    for item in vmap.get("elem", []):
        key, verdict = item
        if isinstance(key, dict) and "concat" in key:
            key = tuple(key["concat"])
        out.append((key, verdict))
    return out


def _names(table: TableObjects | None) -> dict[str, Any]:
    if table is None:
        return {}
    return {
        "chains": set(table.chains), "sets": set(table.sets), "counters": set(table.counters),
        "maps": {name: dict(m.elements) for name, m in table.maps.items()},
    }


def _listed(listing: list[dict[str, Any]]) -> dict[str, Any]:
    if not listing:
        return {}
    maps = {}
    for vmap in _objects(listing, "map"):
        maps[vmap["name"]] = {k: v["goto"]["target"] for k, v in _elements(vmap)}
    return {
        "chains": {c["name"] for c in _objects(listing, "chain")},
        "sets": {s["name"] for s in _objects(listing, "set")},
        "counters": {c["name"] for c in _objects(listing, "counter")},
        "maps": maps,
    }


def check_matches(plan: Plan, netdev: list[dict[str, Any]], inet: list[dict[str, Any]]
                  ) -> Ruleset:
    """The rendering of `plan`, if it names exactly what the kernel lists."""
    rendered = render(plan)
    for family, table, listing in ((NETDEV, rendered.netdev, netdev),
                                   (INET, rendered.inet, inet)):
        want, have = _names(table), _listed(listing)
        if want != have:
            raise AdoptError(f"table {family} {TABLE} differs from what vigil would build")
    return rendered
