"""A `Plan` as nftables objects: two tables, their chains, maps, sets and counters.

`netdev vigil` (direct routing, at the ingress hook of every interface):

    in_<dev>    meta pkttype host ip daddr . meta l4proto . th dport vmap @svc4  (and @svc6)
    s_<svc>     recorded connection?  -> goto r_<svc>__<real>
                [learning: not a SYN -> drop]
                meta mark set jhash <client> mod SLOTS seed <seed>
                meta mark vmap @m_<svc>     slot -> d_ (steady) | r_ (record) | t_ (transition)
                no slot: SYN -> reset, else drop
    r_<svc>__<real>   update @f_<svc>__<real> { <client> }; goto d_
    d_<svc>__<real>   counters; meta mark set 0; fwd ip to <real> device <dev>
    t_<svc>__<legacy>__<new>   SYN -> goto r_<new>; else goto r_<legacy>

`fwd ip to ADDR device DEV` hands the packet to the kernel's neighbour layer:
it resolves and keeps the real server's MAC itself (ARP/ND, refreshed by every
health check), writes this host's MAC as the source and decrements the TTL.

`inet vigil` (NAT): a prerouting nat chain dispatches to n_<svc>, which picks
the slot the same way and jumps to n_<svc>__<real>: `dnat to real:port`.
Conntrack remembers each connection; the NAT path needs no records.

Each object is plain frozen data; `commands` turns two renderings into the
smallest transaction. Comments on rules carry what the kernel cannot say by
itself (scheduler, weights), so `adopt` can read a plan back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.dataplane.plan import (
    FLOW_SET_SIZE,
    SLOTS,
    Plan,
    RealPlan,
    Record,
    ServicePlan,
    prefix_length,
)
from vigil.lvs.table import Forward, Protocol, VirtualService

TABLE = "vigil"
NETDEV = "netdev"
INET = "inet"
#: Ingress and NAT hook priorities.
INGRESS_PRIORITY = 0
DSTNAT_PRIORITY = -100
COMMENT_MAX = 128

Json = Any
ElementKey = int | tuple[Any, ...]


@dataclass(frozen=True)
class Rule:
    expr: str  # canonical JSON of the expression list
    comment: str | None = None

    @classmethod
    def of(cls, *expr: Json, comment: str | None = None) -> Rule:
        if comment is not None and len(comment) > COMMENT_MAX:
            raise ValueError(f"rule comment longer than {COMMENT_MAX}: {comment!r}")
        return cls(json.dumps(list(expr), sort_keys=True, separators=(",", ":")), comment)

    def json(self) -> list[Json]:
        return json.loads(self.expr)


@dataclass(frozen=True)
class Hook:
    type: str
    hook: str
    priority: int
    device: str | None = None


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    hook: Hook | None = None


@dataclass(frozen=True)
class VerdictMap:
    """A map from a key to `goto CHAIN`."""

    name: str
    key: str | tuple[str, ...]
    elements: Mapping[ElementKey, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, self.key, tuple(sorted(self.elements.items(), key=str))))


@dataclass(frozen=True)
class FlowSet:
    """Connections (or clients) recorded by the packet path, forgotten after `timeout`."""

    name: str
    key: str | tuple[str, ...]
    timeout: int
    size: int


@dataclass
class TableObjects:
    family: str
    name: str = TABLE
    chains: dict[str, Chain] = field(default_factory=dict)
    maps: dict[str, VerdictMap] = field(default_factory=dict)
    sets: dict[str, FlowSet] = field(default_factory=dict)
    counters: set[str] = field(default_factory=set)

    def add_chain(self, chain: Chain) -> None:
        self.chains[chain.name] = chain

    def empty(self) -> bool:
        return not (self.chains or self.maps or self.sets or self.counters)


@dataclass
class Ruleset:
    netdev: TableObjects | None = None
    inet: TableObjects | None = None

    def tables(self) -> list[TableObjects]:
        return [t for t in (self.netdev, self.inet) if t is not None]


# -- expressions ------------------------------------------------------------------------
def payload(protocol: str, name: str) -> Json:
    return {"payload": {"protocol": protocol, "field": name}}


def meta(key: str) -> Json:
    return {"meta": {"key": key}}


def match(left: Json, right: Json, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def concat(*items: Json) -> Json:
    return {"concat": list(items)}


def set_mark(value: Json) -> Json:
    return {"mangle": {"key": meta("mark"), "value": value}}


def goto(chain: str) -> Json:
    return {"goto": {"target": chain}}


def vmap(key: Json, name: str) -> Json:
    return {"vmap": {"key": key, "data": f"@{name}"}}


def counter(name: str) -> Json:
    return {"counter": name}


SYN_ONLY = match({"&": [payload("tcp", "flags"), ["syn", "ack"]]}, "syn")
NOT_SYN = match({"&": [payload("tcp", "flags"), ["syn", "ack"]]}, "syn", "!=")
FIN_OR_RST = match(payload("tcp", "flags"), ["fin", "rst"], "in")
RESET = {"reject": {"type": "tcp reset"}}
DROP = {"drop": None}
ACCEPT = {"accept": None}


def _ip(family: int) -> str:
    return "ip6" if family == 6 else "ip"


def _addr_type(family: int) -> str:
    return "ipv6_addr" if family == 6 else "ipv4_addr"


def _mask(family: int, prefix: int) -> str:
    import ipaddress

    network = ipaddress.ip_network(f"{'::' if family == 6 else '0.0.0.0'}/{prefix}")
    return str(network.netmask)


def client_key(service: ServicePlan) -> Json:
    """What a record is keyed on: the connection, or the client network (persistence)."""
    ip = _ip(service.key.family)
    if service.service.persistent is not None:
        prefix = prefix_length(service.service)
        source = payload(ip, "saddr")
        return source if prefix is None else {"&": [source, _mask(service.key.family, prefix)]}
    return concat(payload(ip, "saddr"), payload("th", "sport"))


def client_key_type(service: ServicePlan) -> str | tuple[str, ...]:
    addr = _addr_type(service.key.family)
    if service.service.persistent is not None:
        return addr
    return (addr, "inet_service")


def slot_hash(service: ServicePlan) -> Json:
    """`jhash <fields> mod SLOTS seed <seed>`: the fields as `plan.hash_spec` says."""
    spec = service.hash
    ip = _ip(service.key.family)
    address = payload(ip, "saddr" if spec.source else "daddr")
    if spec.prefix is not None:
        address = {"&": [address, _mask(service.key.family, spec.prefix)]}
    expr = concat(address, payload("th", "sport")) if spec.port else address
    return {"jhash": {"mod": SLOTS, "seed": service.seed, "expr": expr}}


# -- names ------------------------------------------------------------------------------
def service_chain(service: ServicePlan) -> str:
    return f"s_{service.token}"


def slot_map(service: ServicePlan) -> str:
    return f"m_{service.token}"


def deliver_chain(service: ServicePlan, real: str) -> str:
    return f"d_{service.token}__{real}"


def record_chain(service: ServicePlan, real: str) -> str:
    return f"r_{service.token}__{real}"


def flow_set(service: ServicePlan, real: str) -> str:
    """Persistent services name their timeout (a new timeout is a new set)."""
    suffix = f"_p{service.timeout}" if service.service.persistent is not None else ""
    return f"f_{service.token}__{real}{suffix}"


def transition_chain(service: ServicePlan, legacy: str, new: str | None) -> str:
    return f"t_{service.token}__{legacy}__{new or 'none'}"


def in_counter(service: ServicePlan, real: str) -> str:
    return f"c_{service.token}__{real}"


def syn_counter(service: ServicePlan, real: str) -> str:
    return f"y_{service.token}__{real}"


def fin_counter(service: ServicePlan, real: str) -> str:
    return f"z_{service.token}__{real}"


def nat_chain(service: ServicePlan) -> str:
    return f"n_{service.token}"


def nat_map(service: ServicePlan) -> str:
    return f"nm_{service.token}"


def nat_real_chain(service: ServicePlan, real: str) -> str:
    return f"n_{service.token}__{real}"


def nat_counter(service: ServicePlan, real: str) -> str:
    return f"nc_{service.token}__{real}"


def ingress_chain(device: str) -> str:
    return f"in_{device}"


# -- comments: what adopt reads back ----------------------------------------------------
def service_comment(service: VirtualService) -> str:
    key = service.key
    if key.protocol is Protocol.FWM:
        words = ["vigil", "service", "fwm", str(key.fwmark), f"v{key.family}"]
    else:
        words = ["vigil", "service", key.protocol.value, key.address, str(key.port)]
    words.append(service.scheduler)
    if service.persistent is not None:
        words.append(f"persistent={service.persistent}")
    if service.netmask:
        words.append(f"netmask={service.netmask}")
    if service.sched_flags:
        words.append("flags=" + ",".join(service.sched_flags))
    if service.ops:
        words.append("ops")
    return " ".join(words)


def real_comment(real: RealPlan) -> str:
    r = real.real
    words = ["vigil", "real", r.address, str(r.port), r.forward.value, f"weight={r.weight}"]
    if r.upper:
        words.append(f"upper={r.upper}")
    if r.lower:
        words.append(f"lower={r.lower}")
    if real.retired:
        words.append("retired")
    return " ".join(words)


LEARNING_COMMENT = "vigil learning"
#: The dispatch rules of a warm standby carry this comment: they take only packets for
#: addresses this host holds (the VIP arrives with the takeover), as IPVS does.
STANDBY_COMMENT = "vigil standby"
#: The destination is one of this host's own addresses (`fib daddr type local`).
LOCAL_DESTINATION = match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
#: The frame is addressed to this host's MAC. The ingress hook also sees frames for
#: other hosts (a switch floods unicast it has no port for, e.g. after the director
#: that owned the MAC died): forwarding those would send a second copy of another
#: director's flows to the real servers.
FOR_THIS_HOST = match(meta("pkttype"), "host")


def _dispatch(standby: bool, *expr: Json) -> Rule:
    """A base chain's dispatch rule, for frames addressed to this host; on a standby,
    gated on the VIP being local too."""
    if standby:
        return Rule.of(FOR_THIS_HOST, LOCAL_DESTINATION, *expr, comment=STANDBY_COMMENT)
    return Rule.of(FOR_THIS_HOST, *expr)


# -- rendering --------------------------------------------------------------------------
def render(plan: Plan) -> Ruleset:
    """The objects the kernel must hold for `plan`."""
    ruleset = Ruleset()
    netdev_services = [s for s in plan.services if s.netdev]
    nat_services = [s for s in plan.services if s.nat]
    if netdev_services:
        ruleset.netdev = _render_netdev(plan, netdev_services)
    if nat_services:
        ruleset.inet = _render_nat(plan, nat_services)
    return ruleset


def _dispatch_key(family: int) -> Json:
    return concat(payload(_ip(family), "daddr"), meta("l4proto"), payload("th", "dport"))


def _dispatch_element(service: ServicePlan) -> tuple[Any, ...]:
    key = service.key
    return (key.address, key.protocol.value, key.port)


def _render_netdev(plan: Plan, services: list[ServicePlan]) -> TableObjects:
    table = TableObjects(NETDEV)
    for family in (4, 6):
        members = [s for s in services if s.key.family == family]
        if not members:
            continue
        table.maps[f"svc{family}"] = VerdictMap(
            f"svc{family}", (_addr_type(family), "inet_proto", "inet_service"),
            {_dispatch_element(s): service_chain(s) for s in members})
    dispatch = tuple(_dispatch(plan.standby, vmap(_dispatch_key(f), f"svc{f}"))
                     for f in (4, 6) if f"svc{f}" in table.maps)
    for device in plan.devices:
        table.add_chain(Chain(ingress_chain(device), dispatch,
                              Hook("filter", "ingress", INGRESS_PRIORITY, device)))
    for service in services:
        _render_netdev_service(table, service, plan.learning)
    return table


def _render_netdev_service(table: TableObjects, service: ServicePlan, learning: bool) -> None:
    record = service.record
    key = client_key(service)
    rules: list[Rule] = []
    if record is not Record.NEVER:
        for real in service.reals:
            lookup = [match(key, f"@{flow_set(service, real.token)}"),
                      goto(record_chain(service, real.token))]
            if service.tcp and not _takes_new_connections(service, real):
                # A record outlives its connection (it only times out): a new connection
                # that reuses the client's port must not follow it to a server that no
                # longer takes new connections.
                lookup.insert(0, NOT_SYN)
            rules.append(Rule.of(*lookup))
    if learning and service.tcp:
        rules.append(Rule.of(NOT_SYN, DROP, comment=LEARNING_COMMENT))
    rules.append(Rule.of(set_mark(slot_hash(service))))
    rules.append(Rule.of(vmap(meta("mark"), slot_map(service))))
    rules.append(Rule.of(set_mark(0)))
    if service.tcp and not learning:
        rules.append(Rule.of(SYN_ONLY, RESET))
    rules.append(Rule.of(DROP, comment=service_comment(service.service)))
    table.add_chain(Chain(service_chain(service), tuple(rules)))

    for real in service.reals:
        token = real.token
        table.add_chain(Chain(deliver_chain(service, token), _deliver_rules(table, service, real)))
        if record is not Record.NEVER:
            table.sets[flow_set(service, token)] = FlowSet(
                flow_set(service, token), client_key_type(service), service.timeout,
                FLOW_SET_SIZE)
            table.add_chain(Chain(record_chain(service, token), (
                Rule.of({"set": {"op": "update", "elem": key,
                                 "set": f"@{flow_set(service, token)}"}}),
                Rule.of(goto(deliver_chain(service, token))),
            )))

    by_slot = {t.slot: t for t in service.transitions}
    elements: dict[ElementKey, str] = {}
    pairs: set[tuple[str, str | None]] = set()
    for slot in range(SLOTS):
        owner = service.owners[slot] if service.owners else None
        held = by_slot.get(slot)
        if held is not None:
            pairs.add((held.legacy, owner))
            elements[slot] = transition_chain(service, held.legacy, owner)
        elif owner is None:
            continue
        elif record is Record.ALWAYS or (record is Record.TRANSITIONS and learning):
            elements[slot] = record_chain(service, owner)
        else:
            elements[slot] = deliver_chain(service, owner)
    table.maps[slot_map(service)] = VerdictMap(slot_map(service), "mark", elements)
    for legacy, new in sorted(pairs, key=str):
        new_rule = goto(record_chain(service, new)) if new is not None else RESET
        table.add_chain(Chain(transition_chain(service, legacy, new), (
            Rule.of(SYN_ONLY, new_rule),
            Rule.of(goto(record_chain(service, legacy))),
        )))


def _takes_new_connections(service: ServicePlan, real: RealPlan) -> bool:
    """Whether a recorded client may bring it a new connection: a usable server, or, as
    IPVS does for persistence, a quiesced one its persistent clients still stick to."""
    if real.usable:
        return True
    return service.service.persistent is not None and not real.retired and real.reachable


def _deliver_rules(table: TableObjects, service: ServicePlan, real: RealPlan
                   ) -> tuple[Rule, ...]:
    token = real.token
    comment = real_comment(real)
    if real.real.forward is Forward.MASQ:  # NAT picks it up in prerouting
        return (Rule.of(set_mark(0), ACCEPT, comment=comment),)
    rules: list[Rule] = []
    if service.tcp:
        for name, test in ((syn_counter(service, token), SYN_ONLY),
                           (fin_counter(service, token), FIN_OR_RST)):
            table.counters.add(name)
            rules.append(Rule.of(test, counter(name)))
    name = in_counter(service, token)
    table.counters.add(name)
    route = real.route
    if route.local:
        rules.append(Rule.of(counter(name), set_mark(0), ACCEPT, comment=comment))
    elif real.reachable:
        family = "ip6" if ":" in real.real.address else "ip"
        rules.append(Rule.of(counter(name), set_mark(0),
                             {"fwd": {"dev": route.device, "family": family,
                                      "addr": real.real.address}}, comment=comment))
    else:
        rules.append(Rule.of(counter(name), DROP, comment=comment))
    return tuple(rules)


def _render_nat(plan: Plan, services: list[ServicePlan]) -> TableObjects:
    table = TableObjects(INET)
    rules: list[Rule] = []
    for family in (4, 6):
        marks = [s for s in services
                 if s.key.protocol is Protocol.FWM and s.key.family == family]
        if marks:
            name = f"nfwm{family}"
            table.maps[name] = VerdictMap(name, "mark",
                                          {s.key.fwmark: nat_chain(s) for s in marks})
            rules.append(_dispatch(plan.standby,
                                   match(meta("nfproto"), "ipv6" if family == 6 else "ipv4"),
                                   vmap(meta("mark"), name)))
    for family in (4, 6):
        members = [s for s in services
                   if s.key.protocol is not Protocol.FWM and s.key.family == family]
        if members:
            name = f"nsvc{family}"
            table.maps[name] = VerdictMap(
                name, (_addr_type(family), "inet_proto", "inet_service"),
                {_dispatch_element(s): nat_chain(s) for s in members})
            rules.append(_dispatch(plan.standby, vmap(_dispatch_key(family), name)))
    table.add_chain(Chain("nat_prerouting", tuple(rules),
                          Hook("nat", "prerouting", DSTNAT_PRIORITY)))
    for service in services:
        _render_nat_service(table, service, plan.learning)
    return table


def _render_nat_service(table: TableObjects, service: ServicePlan, learning: bool) -> None:
    restore = set_mark(service.key.fwmark)  # 0, or the mark a fwmark service matched
    rules: list[Rule] = []
    if learning and service.tcp:
        rules.append(Rule.of(NOT_SYN, DROP, comment=LEARNING_COMMENT))
    rules.append(Rule.of(set_mark(slot_hash(service))))
    rules.append(Rule.of(vmap(meta("mark"), nat_map(service))))
    rules.append(Rule.of(restore))
    if service.tcp and not learning:
        rules.append(Rule.of(SYN_ONLY, RESET))
    rules.append(Rule.of(DROP, comment=service_comment(service.service)))
    table.add_chain(Chain(nat_chain(service), tuple(rules)))
    current = [r for r in service.reals if not r.retired]
    for real in current:
        table.add_chain(Chain(nat_real_chain(service, real.token),
                              _nat_rules(table, service, real, restore)))
    table.maps[nat_map(service)] = VerdictMap(nat_map(service), "mark", {
        slot: nat_real_chain(service, owner) for slot, owner in enumerate(service.owners)})


def _nat_rules(table: TableObjects, service: ServicePlan, real: RealPlan, restore: Json
               ) -> tuple[Rule, ...]:
    comment = real_comment(real)
    if real.real.forward is not Forward.MASQ:
        return (Rule.of(restore, ACCEPT, comment=comment),)
    name = nat_counter(service, real.token)
    table.counters.add(name)
    port = real.real.port
    proto = service.key.protocol
    l4 = [match(meta("l4proto"), proto.value)] if port and proto is not Protocol.FWM else []
    if real.route.local:
        target = {"redirect": {"port": port}} if l4 else {"redirect": None}
        return (Rule.of(counter(name)), Rule.of(*l4, restore, target, comment=comment))
    if not real.reachable:
        return (Rule.of(counter(name), DROP, comment=comment),)
    dnat: dict[str, Any] = {"family": _ip(6 if ":" in real.real.address else 4),
                            "addr": real.real.address}
    if l4:
        dnat["port"] = port
    return (Rule.of(counter(name)), Rule.of(*l4, restore, {"dnat": dnat}, comment=comment))
