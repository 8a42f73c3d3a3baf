"""Where a daemon serves `/metrics`: ``HOST:PORT``, ``[V6]:PORT`` or a bare ``PORT``.

A bare port binds loopback: metrics say which nodes and servers exist and
how they fare, so nothing is exposed beyond the machine unless asked for.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from vigil.errors import UsageError

LOOPBACK = "127.0.0.1"
_FORM = re.compile(r"(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):)?([0-9]+)")


@dataclass(frozen=True)
class MetricsAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def shifted(self, offset: int) -> MetricsAddress:
        """The same host, `offset` ports further (one volume daemon per resource)."""
        port = self.port + offset
        if not 0 < port < 65536:
            raise UsageError(f"metrics address {self} + {offset}: port {port} out of range")
        return MetricsAddress(self.host, port)


def parse_address(text: str, where: str = "metrics address") -> MetricsAddress:
    """``HOST:PORT`` / ``[V6]:PORT`` / ``PORT`` (loopback); `where` names the source in errors."""
    m = _FORM.fullmatch(text.strip())
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise UsageError(f"{where}: bad address {text!r}: expected HOST:PORT, [IPV6]:PORT "
                         "or PORT (loopback), e.g. 127.0.0.1:9694")
    host = (m.group(1) or LOOPBACK).strip("[]")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{where}: bad IPv6 address {host!r}") from None
    return MetricsAddress(host, int(m.group(2)))


__all__ = ["LOOPBACK", "MetricsAddress", "parse_address"]
