"""What the kernel should hold for a director table: slots, records and transitions.

Pure: a `Table`, the host's `Environment` (devices, routes to the real
servers), the previous `Plan` and `now` in; the next `Plan` out. The rules it
follows (docs/dataplane.md explains why):

* every service hashes its connections with the kernel's seeded jhash into a
  fixed table of `SLOTS` slots; a real server owns slots in proportion to its
  weight (`fill_slots` without history: Maglev order, a pure function of the
  weights, so two directors with the same table hold the same slots);
* TCP connections cost no state while their slot keeps its owner. When a
  slot changes owner, it goes into *transition* for `WINDOW` seconds: new
  connections (SYN) go to the new owner and are recorded, any other packet of
  an unrecorded connection belongs to the old owner (the *legacy*) and is
  recorded there on its first packet. Recorded connections stay where they
  are for as long as they send. So a weight change, a quiesced or a removed
  server moves only new connections;
* UDP flows and persistent clients are always recorded (there is no SYN to
  tell a new flow from an old one), one-packet scheduling never;
* a director that starts on an empty kernel *learns* first: until its table
  settles (the first round of checks), packets of unknown TCP connections
  other than a SYN are dropped (the client retransmits) instead of being
  sent to a server the unsettled table may not mean, and new connections are
  recorded. That is what lets a standby take over live connections;
* removed real servers stay as *retired* while a transition or recorded
  connections still lead to them.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from vigil.lvs.schedulers.base import stable_hash
from vigil.lvs.schedulers.slots import DEFAULT_SIZE, fill_slots
from vigil.lvs.table import (
    Forward,
    Protocol,
    RealKey,
    RealServer,
    ServiceKey,
    Table,
    VirtualService,
)

#: Slots per service: fixed (a change of size would rehash every flow), prime, and
#: the same as the userspace schedulers' tables.
SLOTS = DEFAULT_SIZE
#: Idle time after which a recorded connection is forgotten (IPVS: tcp 900 s, udp 300 s).
TCP_TIMEOUT = 900
UDP_TIMEOUT = 300
#: How long a changed slot keeps sending unrecorded connections to its old owner.
WINDOW = float(TCP_TIMEOUT)
#: Most connections recorded per real server and service.
FLOW_SET_SIZE = 262144


class PlanError(ValueError):
    """The table asks for something this data path cannot do."""


class Record(StrEnum):
    TRANSITIONS = "transitions"  # TCP: connections recorded only around a change
    ALWAYS = "always"  # UDP flows, persistent clients
    NEVER = "never"  # one-packet scheduling


@dataclass(frozen=True)
class Route:
    """How this host reaches a real server."""

    device: str | None = None  # the interface (None: no route)
    local: bool = False  # an address of this host: delivered locally (IPVS's "Local")
    gateway: bool = False  # only through a router: direct routing cannot reach it


UNROUTED = Route()


@dataclass(frozen=True)
class Environment:
    """What the plan needs to know about the host."""

    devices: tuple[str, ...] = ()  # interfaces whose ingress is watched
    routes: tuple[tuple[str, Route], ...] = ()  # real address -> route

    @classmethod
    def of(cls, devices: Iterable[str], routes: Mapping[str, Route]) -> Environment:
        return cls(tuple(sorted(set(devices))), tuple(sorted(routes.items())))

    def route(self, address: str) -> Route:
        return dict(self.routes).get(address, UNROUTED)


@dataclass(frozen=True)
class HashSpec:
    """Which packet fields pick the slot (and, when recorded, key the record)."""

    source: bool = True  # client address (False: the destination, for dh)
    port: bool = True  # and the client's port
    prefix: int | None = None  # persistence granularity (None: the whole address)


@dataclass(frozen=True)
class Transition:
    slot: int
    legacy: str  # the real server token unrecorded connections of this slot belong to
    until: float


@dataclass(frozen=True)
class RealPlan:
    real: RealServer
    route: Route = UNROUTED
    retired: bool = False

    @property
    def token(self) -> str:
        return real_token(self.real.key)

    @property
    def reachable(self) -> bool:
        if self.route.local:
            return True
        if self.real.forward is Forward.MASQ:
            return self.route.device is not None
        return self.route.device is not None and not self.route.gateway

    @property
    def usable(self) -> bool:
        return not self.retired and self.real.weight > 0 and self.reachable


@dataclass(frozen=True)
class ServicePlan:
    service: VirtualService  # settings and the current real servers
    reals: tuple[RealPlan, ...] = ()  # current and retired, by token
    owners: tuple[str, ...] = ()  # slot -> real token; () when no server takes traffic
    transitions: tuple[Transition, ...] = ()  # by slot

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    @property
    def token(self) -> str:
        return service_token(self.key)

    @property
    def seed(self) -> int:
        return service_seed(self.key)

    @property
    def tcp(self) -> bool:
        return self.key.protocol is Protocol.TCP

    @property
    def record(self) -> Record:
        return record_mode(self.service)

    @property
    def hash(self) -> HashSpec:
        return hash_spec(self.service)

    @property
    def timeout(self) -> int:
        if self.service.persistent is not None:
            return max(1, self.service.persistent)
        return TCP_TIMEOUT if self.tcp else UDP_TIMEOUT

    @property
    def netdev(self) -> bool:
        """Part of the ingress (direct routing) path: any server not NATed, and a service
        without servers too (it holds its VIP's connections while it learns or waits)."""
        return not self.reals or any(r.real.forward is not Forward.MASQ for r in self.reals)

    @property
    def nat(self) -> bool:
        """Part of the NAT path."""
        return any(r.real.forward is Forward.MASQ and not r.retired for r in self.reals)

    def real(self, token: str) -> RealPlan | None:
        for real in self.reals:
            if real.token == token:
                return real
        return None

    def legacies(self) -> set[str]:
        return {t.legacy for t in self.transitions}


@dataclass(frozen=True)
class Plan:
    services: tuple[ServicePlan, ...] = ()
    devices: tuple[str, ...] = ()
    learning: bool = False
    #: a warm standby: the same slots, taking only packets for addresses held here
    standby: bool = False

    def table(self) -> Table:
        """The director table this plan carries out (retired servers are not in it)."""
        return Table.of(s.service for s in self.services)

    def service(self, key: ServiceKey) -> ServicePlan | None:
        for service in self.services:
            if service.key == key:
                return service
        return None

    def next_deadline(self) -> float | None:
        """When a transition window ends (the plan must be rebuilt then)."""
        ends = [t.until for s in self.services for t in s.transitions]
        return min(ends) if ends else None


# -- names and hashing -----------------------------------------------------------------
def _safe(text: str) -> str:
    return text.replace(".", "_").replace(":", "-")


def service_token(key: ServiceKey) -> str:
    """`tcp_198_51_100_100_80`, `udp_2001-db8--100_53`, `fwm_5_4`: readable, stable,
    and never containing `__` (the separator of service and real in object names)."""
    if key.protocol is Protocol.FWM:
        return f"fwm_{key.fwmark}_{key.family}"
    return f"{key.protocol.value}_{_safe(key.address)}_{key.port}"


def real_token(key: RealKey) -> str:
    return f"{_safe(key.address)}_{key.port}"


def service_seed(key: ServiceKey) -> int:
    """The jhash seed: derived from the service, so every director uses the same one."""
    return stable_hash(key.label.encode(), b"vigil-jhash") & 0xFFFFFFFF


def prefix_length(service: VirtualService) -> int | None:
    """Persistence granularity (-M) as a prefix length; None for a whole address."""
    bits = 128 if service.key.family == 6 else 32
    netmask = service.netmask
    if not netmask:
        return None
    try:
        length = int(netmask)
    except ValueError:
        length = ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen
    return None if length >= bits else length


def hash_spec(service: VirtualService) -> HashSpec:
    """IPVS's choice of fields: sh/mh hash the client address (`-port` flags add the
    port), dh the destination, persistence the client network; every other
    scheduler spreads connections (address and port)."""
    flags = set(service.sched_flags)
    if service.persistent is not None:
        return HashSpec(source=True, port=False, prefix=prefix_length(service))
    if service.scheduler in ("sh", "mh"):
        return HashSpec(port=f"{service.scheduler}-port" in flags)
    if service.scheduler == "dh":
        return HashSpec(source=False, port=False)
    return HashSpec()


def record_mode(service: VirtualService) -> Record:
    if service.ops:
        return Record.NEVER
    if service.persistent is not None or service.key.protocol is not Protocol.TCP:
        return Record.ALWAYS
    return Record.TRANSITIONS


def check_supported(service: VirtualService) -> None:
    for real in service.reals:
        if real.forward is Forward.IPIP:
            raise PlanError(f"{service.key}: ipip (tunnel) forwarding needs the ipvs backend")
        if service.key.protocol is Protocol.FWM and real.forward is not Forward.MASQ:
            raise PlanError(f"{service.key}: a fwmark service with direct routing needs the "
                            "ipvs backend (the mark is set after the ingress hook)")


# -- the plan ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def owners_for(weights: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    """Slot owners for (token, weight) pairs: Maglev order, no history (see module doc)."""
    return tuple(fill_slots(dict(weights), SLOTS)) if weights else ()



@dataclass
class _Builder:
    env: Environment
    now: float
    learning: bool
    window: float
    drained: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def service(self, service: VirtualService, previous: ServicePlan | None) -> ServicePlan:
        check_supported(service)
        current = [RealPlan(r, self._route(r)) for r in service.reals]
        plan = ServicePlan(service, tuple(sorted(current, key=lambda r: r.token)))
        weights = tuple((r.token, r.real.weight) for r in plan.reals if r.usable)
        plan = replace(plan, owners=owners_for(weights))
        if previous is None or not plan.netdev:
            return plan  # NAT connections live in conntrack: nothing to carry over
        if plan.record is Record.TRANSITIONS and not self.learning:
            plan = replace(plan, transitions=self._transitions(previous, plan))
        return replace(plan, reals=self._with_retired(plan, previous))

    def _route(self, real: RealServer) -> Route:
        return self.env.route(real.address)

    def _transitions(self, previous: ServicePlan, plan: ServicePlan) -> tuple[Transition, ...]:
        active = {t.slot: t for t in previous.transitions if t.until > self.now}
        old_owners, new_owners = previous.owners, plan.owners
        if old_owners == new_owners:
            return tuple(t for t in previous.transitions if t.slot in active)
        result = []
        for slot in range(SLOTS):
            old = old_owners[slot] if old_owners else None
            new = new_owners[slot] if new_owners else None
            held = active.get(slot)
            if old == new:
                if held is not None:
                    result.append(held)
                continue
            legacy, until = (held.legacy, held.until) if held else (old, self.now + self.window)
            if legacy is not None and legacy != new:
                result.append(Transition(slot, legacy, until))
        return tuple(result)

    def _with_retired(self, plan: ServicePlan, previous: ServicePlan | None
                      ) -> tuple[RealPlan, ...]:
        reals = {r.token: r for r in plan.reals}
        if previous is None or plan.record is Record.NEVER:
            return plan.reals
        needed = plan.legacies()
        for old in previous.reals:
            if old.token in reals:
                continue
            drained = (plan.token, old.token) in self.drained
            if old.token in needed or not drained:
                reals[old.token] = RealPlan(old.real, self._route(old.real), retired=True)
        return tuple(sorted(reals.values(), key=lambda r: r.token))


def build_plan(
    table: Table,
    env: Environment,
    previous: Plan | None = None,
    now: float = 0.0,
    learning: bool = False,
    window: float = WINDOW,
    drained: Iterable[tuple[str, str]] = (),
    standby: bool = False,
) -> Plan:
    """The plan for `table`; `previous` is what the kernel holds (None: nothing yet).

    `drained` names (service token, real token) pairs whose record sets were
    seen empty: retired servers among them may go.
    """
    builder = _Builder(env, now, learning, window, frozenset(drained))
    services = []
    for service in table:
        old = previous.service(service.key) if previous is not None else None
        services.append(builder.service(service, old))
    tokens = [s.token for s in services]
    if len(set(tokens)) != len(tokens):  # pragma: no cover - tokens follow the keys
        raise PlanError("two services map to the same kernel names")
    devices = env.devices if any(s.netdev for s in services) else ()
    return Plan(tuple(services), devices, learning, standby)


def slot_of(service: ServicePlan, client: str, client_port: int, destination: str = "") -> int:
    """The slot the kernel picks for a packet from `client:client_port` (see `jhash`)."""
    from vigil.dataplane import jhash

    spec = service.hash
    parts: list[bytes] = []
    if spec.source:
        parts.append(jhash.address(client, spec.prefix))
    else:
        parts.append(jhash.address(destination or service.key.address))
    if spec.port:
        parts.append(jhash.port(client_port))
    return jhash.nft_jhash(tuple(parts), SLOTS, service.seed)


def owner_of(service: ServicePlan, client: str, client_port: int) -> RealKey | None:
    """The real server a new connection from `client:client_port` goes to."""
    if not service.owners:
        return None
    token = service.owners[slot_of(service, client, client_port)]
    real = service.real(token)
    return real.real.key if real is not None else None
