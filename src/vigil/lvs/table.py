"""The LVS table as plain frozen data: virtual services and their real servers.

This is what a backend holds (the kernel's IPVS table, an nftables ruleset, the
userspace proxy's listeners), what `reconcile` diffs, and what `vigil lvs list`
prints. Health and check settings live elsewhere (`settings`): a `Table` says
only where traffic may go and with which weight.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


@functools.lru_cache(maxsize=1 << 16)
def normalize_address(address: str) -> str:
    """The canonical text of an address (cached: tables are rebuilt often)."""
    return str(ipaddress.ip_address(address))


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    FWM = "fwm"


class Forward(StrEnum):
    """How packets reach a real server (ipvsadm -g / -m / -i)."""

    GATE = "gate"  # direct routing: rewrite the destination MAC only
    MASQ = "masq"  # NAT: rewrite the destination address and port
    IPIP = "ipip"  # IP-in-IP tunnel

    @property
    def ipvsadm_name(self) -> str:
        return {"gate": "Route", "masq": "Masq", "ipip": "Tunnel"}[self.value]

    @property
    def ipvsadm_flag(self) -> str:
        return {"gate": "-g", "masq": "-m", "ipip": "-i"}[self.value]


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def format_endpoint(address: str, port: int) -> str:
    """`198.51.100.1:80`, `[2001:db8::1]:80`."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True, order=True)
class ServiceKey:
    """What identifies a virtual service: protocol + address + port, or a firewall mark."""

    protocol: Protocol
    address: str = ""  # empty for fwmark services
    port: int = 0
    fwmark: int = 0
    family: int = 4  # fwmark services need it said (ipvsadm -6 -f N)

    def __post_init__(self) -> None:
        if self.protocol is Protocol.FWM:
            if self.fwmark <= 0 or self.address:
                raise ValueError("a fwmark service has a mark > 0 and no address")
        else:
            normalized = normalize_address(self.address)
            object.__setattr__(self, "address", normalized)
            object.__setattr__(self, "family", _family(normalized))
            if not 0 <= self.port <= 65535:
                raise ValueError(f"port {self.port} out of range")

    @classmethod
    def tcp(cls, address: str, port: int) -> ServiceKey:
        return cls(Protocol.TCP, address, port)

    @classmethod
    def udp(cls, address: str, port: int) -> ServiceKey:
        return cls(Protocol.UDP, address, port)

    @classmethod
    def fwm(cls, mark: int, family: int = 4) -> ServiceKey:
        return cls(Protocol.FWM, fwmark=mark, family=family)

    def __str__(self) -> str:
        if self.protocol is Protocol.FWM:
            return f"FWM  {self.fwmark}" + (" IPv6" if self.family == 6 else "")
        return f"{self.protocol.value.upper()}  {format_endpoint(self.address, self.port)}"

    @property
    def label(self) -> str:
        """Compact id for logs and file names: `tcp:198.51.100.100:80`, `fwm:5`."""
        if self.protocol is Protocol.FWM:
            return f"fwm:{self.fwmark}"
        return f"{self.protocol.value}:{format_endpoint(self.address, self.port)}"


@dataclass(frozen=True, order=True)
class RealKey:
    """A real server within one virtual service: its address and port."""

    address: str
    port: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))

    def __str__(self) -> str:
        return format_endpoint(self.address, self.port)


@dataclass(frozen=True)
class RealServer:
    """One destination of a virtual service, as ipvsadm -a sets it."""

    address: str
    port: int = 0
    weight: int = 1
    forward: Forward = Forward.GATE
    upper: int = 0  # -x: no new connections at this many (0 = no limit)
    lower: int = 0  # -y: accept again below this many

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_address(self.address))
        if not 0 <= self.weight <= 2147483647:
            raise ValueError(f"weight {self.weight} out of range 0..2147483647")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")

    @functools.cached_property
    def key(self) -> RealKey:
        return RealKey(self.address, self.port)

    def with_weight(self, weight: int) -> RealServer:
        return replace(self, weight=weight)


@dataclass(frozen=True)
class VirtualService:
    """A virtual service with its scheduler, persistence and real servers."""

    key: ServiceKey
    scheduler: str = "wlc"
    persistent: int | None = None  # seconds (-p); None = not persistent
    netmask: str | None = None  # persistence granularity (-M)
    sched_flags: tuple[str, ...] = ()  # -b: sh-port, sh-fallback, mh-port, ...
    ops: bool = False  # one-packet scheduling (UDP)
    reals: tuple[RealServer, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.reals, key=lambda r: r.key))
        keys = [r.key for r in ordered]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.key}: a real server appears twice")
        object.__setattr__(self, "reals", ordered)
        object.__setattr__(self, "sched_flags", tuple(sorted(set(self.sched_flags))))

    @functools.cached_property
    def real_map(self) -> dict[RealKey, RealServer]:
        return {r.key: r for r in self.reals}

    def real(self, key: RealKey) -> RealServer | None:
        return self.real_map.get(key)

    def settings_equal(self, other: VirtualService) -> bool:
        """Same service-level settings (what ipvsadm -E changes), reals ignored."""
        return self.without_reals() == other.without_reals()

    def without_reals(self) -> VirtualService:
        return replace(self, reals=())

    def with_reals(self, reals: Iterable[RealServer]) -> VirtualService:
        return replace(self, reals=tuple(reals))

    def with_real(self, real: RealServer) -> VirtualService:
        others = [r for r in self.reals if r.key != real.key]
        return replace(self, reals=(*others, real))

    def without_real(self, key: RealKey) -> VirtualService:
        return replace(self, reals=tuple(r for r in self.reals if r.key != key))


@dataclass(frozen=True)
class Table:
    """Every virtual service a backend holds, in a stable order."""

    services: tuple[VirtualService, ...] = field(default=())

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.services, key=lambda s: s.key))
        keys = [s.key for s in ordered]
        if len(set(keys)) != len(keys):
            raise ValueError("a virtual service appears twice")
        object.__setattr__(self, "services", ordered)

    @classmethod
    def of(cls, services: Iterable[VirtualService]) -> Table:
        return cls(tuple(services))

    @functools.cached_property
    def service_map(self) -> Mapping[ServiceKey, VirtualService]:
        return {s.key: s for s in self.services}

    def service(self, key: ServiceKey) -> VirtualService | None:
        return self.service_map.get(key)

    def __iter__(self) -> Iterator[VirtualService]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)

    def with_service(self, service: VirtualService) -> Table:
        others = [s for s in self.services if s.key != service.key]
        return Table((*others, service))

    def without_service(self, key: ServiceKey) -> Table:
        return Table(tuple(s for s in self.services if s.key != key))

    def restricted_to(self, keys: Iterable[ServiceKey]) -> Table:
        wanted = set(keys)
        return Table(tuple(s for s in self.services if s.key in wanted))
