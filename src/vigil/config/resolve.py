"""Name lookups the config formats need (host names, service names), injectable.

ldirectord resolves `virtual=www.example.com:http` and `real=sql01->sql03`
when it reads its file; heartbeat's `ucast` accepts a host name. Parsers take
a `Resolver` so tests (and `vigil check` on a machine that is not the
cluster) can answer with fixed tables instead of the system's resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class Resolver(Protocol):
    """Turns names into addresses and ports. Returns empty/None when a name is unknown."""

    def addresses(self, host: str, family: int = 4) -> tuple[str, ...]:
        """The addresses of `host` in `family` (4 or 6); a literal address returns itself."""
        ...

    def service_port(self, name: str, protocol: str | None = None) -> int | None:
        """The port of a service name (`http`) for `protocol` (tcp/udp/None = any)."""
        ...


def _literal(host: str, family: int) -> tuple[str, ...] | None:
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return (str(addr),) if addr.version == family else ()


class SystemResolver:
    """The machine's resolver (`getaddrinfo`, `getservbyname`), as ldirectord uses."""

    def addresses(self, host: str, family: int = 4) -> tuple[str, ...]:
        literal = _literal(host, family)
        if literal is not None:
            return literal
        af = socket.AF_INET6 if family == 6 else socket.AF_INET
        try:
            infos = socket.getaddrinfo(host, None, af, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return ()
        out: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in out:
                out.append(address)
        return tuple(out)

    def service_port(self, name: str, protocol: str | None = None) -> int | None:
        if name.isdigit():
            port = int(name)
            return port if 0 <= port < 65536 else None
        try:
            if protocol in ("tcp", "udp"):
                return socket.getservbyname(name, protocol)
            return socket.getservbyname(name)
        except (OSError, UnicodeError):
            return None


@dataclass(frozen=True)
class StaticResolver:
    """Fixed answers for tests: `hosts` maps names to addresses, `services` names to ports."""

    hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: Mapping[str, int] = field(default_factory=dict)

    def addresses(self, host: str, family: int = 4) -> tuple[str, ...]:
        literal = _literal(host, family)
        if literal is not None:
            return literal
        found = self.hosts.get(host, ())
        return tuple(a for a in found if ipaddress.ip_address(a).version == family)

    def service_port(self, name: str, protocol: str | None = None) -> int | None:
        if name.isdigit():
            port = int(name)
            return port if 0 <= port < 65536 else None
        return self.services.get(name)


#: The service names the seed and Debian's examples use, for tests that must not
#: depend on /etc/services.
COMMON_SERVICES: Mapping[str, int] = {
    "ftp": 21, "ssh": 22, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110,
    "nntp": 119, "imap2": 143, "imap": 143, "ldap": 389, "https": 443, "submission": 587,
    "ldaps": 636, "imaps": 993, "pop3s": 995, "mysql": 3306, "postgresql": 5432, "sip": 5060,
    "radius": 1812, "ha-cluster": 694, "http-alt": 8080,
}
