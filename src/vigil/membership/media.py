"""The media of ha.cf (bcast, mcast, mcast6, ucast, ucast6) as plain descriptions.

A medium is how heartbeats leave and enter this node; the sockets are in
`transports`. Media on the same interface form one *link* (named after the
interface, as cl_status names them): a peer is dead only when silent on
every link, and each link's state is reported.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vigil.errors import UsageError

KINDS = ("bcast", "mcast", "mcast6", "ucast", "ucast6")
DEFAULT_UDPPORT = 694


@dataclass(frozen=True)
class Medium:
    kind: str
    dev: str
    port: int = DEFAULT_UDPPORT
    #: mcast/mcast6: the group; ucast/ucast6: the peer (ucast6 may carry %scope)
    address: str | None = None
    ttl: int = 1
    loop: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"unknown medium {self.kind!r} (known: {', '.join(KINDS)})")
        if not 0 < self.port < 65536:
            raise UsageError(f"{self.kind} {self.dev}: port {self.port} out of range")
        if self.kind != "bcast":
            if self.address is None:
                raise UsageError(f"{self.kind} {self.dev}: needs an address")
            ip = ipaddress.ip_address(self.address.split("%")[0])
            if (ip.version == 6) != self.kind.endswith("6"):
                raise UsageError(f"{self.kind} {self.dev}: {self.address} is IPv{ip.version}")
            if self.kind.startswith("mcast") and not ip.is_multicast:
                raise UsageError(f"{self.kind} {self.dev}: {self.address} is not multicast")
        if self.kind.startswith("mcast") and self.loop != 0:
            raise UsageError(f"{self.kind} {self.dev}: loop must be 0")

    @property
    def link(self) -> str:
        return self.dev

    @property
    def family(self) -> int:
        return 6 if self.kind.endswith("6") else 4

    def __str__(self) -> str:
        parts = [self.kind, self.dev]
        if self.address:
            parts.append(self.address)
        if self.kind.startswith("mcast") or self.port != DEFAULT_UDPPORT:
            parts.append(str(self.port))
        return " ".join(parts)


def links_of(media: list[Medium] | tuple[Medium, ...]) -> tuple[str, ...]:
    seen: list[str] = []
    for medium in media:
        if medium.link not in seen:
            seen.append(medium.link)
    return tuple(seen)
