"""The director's runtime configuration: services with their checks and policy knobs.

This is ldirectord.cf's meaning, independent of its syntax: `adapter` builds it
from the config parser's model (or from the minimal reader), tests build it
directly. Defaults are ldirectord's (code, not man page: quiescent=no).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from vigil.config.ldirectord_keys import CheckKeys, CheckType, ServiceKeys
from vigil.lvs.table import Protocol, RealKey, RealServer, ServiceKey, VirtualService


@dataclass(frozen=True)
class CheckSpec(CheckKeys):
    """How a real server of one service is checked: ldirectord.cf's per-virtual check
    keys (`CheckKeys`, shared with the parser's model) and what the director adds."""

    #: Accepted HTTP status codes as inclusive ranges (ldirectord: any 2xx).
    status_codes: tuple[tuple[int, int], ...] = ((200, 299),)
    #: Verify the server's TLS certificate (ldirectord never does; checks go by IP).
    tls_verify: bool = False
    tls_ca: str | None = None

    def __post_init__(self) -> None:
        if self.checktype not in CheckType.__members__.values():
            raise ValueError(f"unknown checktype {self.checktype!r}")
        # a type given as a string (tests, hand-built configs) compares and hashes the same
        object.__setattr__(self, "checktype", CheckType(self.checktype))


@dataclass(frozen=True)
class RealSpec:
    """A configured real server: its table entry (configured weight) and its overrides."""

    real: RealServer
    request: str | None = None
    receive: str | None = None

    @property
    def key(self) -> RealKey:
        return self.real.key


@dataclass(frozen=True)
class ServiceConfig(ServiceKeys):
    """One `virtual=` section: its policy keys (`ServiceKeys`, shared with the
    parser's model), its table entry, real servers and check."""

    service: VirtualService  # key, scheduler, persistence; its reals are ignored
    reals: tuple[RealSpec, ...] = ()
    check: CheckSpec = field(default_factory=CheckSpec)
    rise: int = 1  # vigil: passes needed to come up (ldirectord: 1)
    fallback: RealServer | None = None
    emailalert: tuple[str, ...] = ()  # the file's comma-separated list, split

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    def real_spec(self, key: RealKey) -> RealSpec | None:
        return next((r for r in self.reals if r.key == key), None)

    def check_port(self, real: RealSpec) -> int:
        if self.check.checkport:
            return self.check.checkport
        return real.real.port or self.service.key.port

    def check_identity(self, real: RealSpec) -> tuple:
        """Reals with equal identities are checked once and the result shared
        (ldirectord: same check parameters in several virtual services)."""
        check = replace(
            self.check,
            request=real.request if real.request is not None else self.check.request,
            receive=real.receive if real.receive is not None else self.check.receive,
        )
        protocol = self.key.protocol
        if protocol is Protocol.FWM:
            protocol = Protocol.TCP
        # External checks get the virtual service as arguments: theirs is per service.
        virtual = self.key if check.checktype in ("external", "external-perl") else None
        return (protocol, real.real.address, real.real.port, self.check_port(real), check,
                virtual)


@dataclass(frozen=True)
class DirectorConfig:
    """The whole file: global settings and every virtual service."""

    services: tuple[ServiceConfig, ...] = ()
    source: str | None = None
    autoreload: bool = False
    callback: str | None = None
    logfile: str | None = None
    maintenancedir: str | None = None
    readdquiescent: bool = False
    emailalertfrom: str | None = None
    supervised: bool = False

    def __post_init__(self) -> None:
        keys = [s.key for s in self.services]
        if len(set(keys)) != len(keys):
            raise ValueError("a virtual service is configured twice")

    @functools.cached_property
    def service_map(self) -> dict[ServiceKey, ServiceConfig]:
        return {s.key: s for s in self.services}

    def service(self, key: ServiceKey) -> ServiceConfig | None:
        return self.service_map.get(key)
