"""heartbeat's address argument `ip[/bits[/iface[:label]][/broadcast]]` (pure).

As in heartbeat's IPaddr/IPaddr2 wrappers: the third field is the interface,
unless it starts with a digit, in which case it is the broadcast address and
the interface is found from the routing table (findif). The mask may also be
written as a dotted quad.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class AddressSpecError(ValueError):
    """The argument is not a valid heartbeat address specification."""


@dataclass(frozen=True)
class AddressSpec:
    ip: str
    prefixlen: int | None = None
    nic: str | None = None
    label: str | None = None  # the part after "iface:", e.g. "0" for eth0:0
    broadcast: str | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.ip).version

    def full_label(self) -> str | None:
        if self.nic and self.label:
            return f"{self.nic}:{self.label}"
        return None


def _prefix(text: str, version: int) -> int:
    limit = 32 if version == 4 else 128
    if "." in text and version == 4:
        try:
            mask = ipaddress.IPv4Network(f"0.0.0.0/{text}")
        except ValueError:
            raise AddressSpecError(f"bad netmask {text!r}") from None
        return mask.prefixlen
    if not text.isdigit() or not 0 < int(text) <= limit:
        raise AddressSpecError(f"bad prefix length {text!r} (1..{limit})")
    return int(text)


def parse_address(text: str) -> AddressSpec:
    fields = text.split("/")
    try:
        ip = ipaddress.ip_address(fields[0])
    except ValueError:
        raise AddressSpecError(f"{fields[0]!r} is not an IP address") from None
    if len(fields) > 4:
        raise AddressSpecError(f"too many fields in {text!r} (ip/bits/iface/broadcast)")
    prefixlen = _prefix(fields[1], ip.version) if len(fields) > 1 and fields[1] else None
    nic = label = broadcast = None
    if len(fields) > 2 and fields[2]:
        if fields[2][0].isdigit():
            broadcast = fields[2]
        else:
            nic, _, label = fields[2].partition(":")
            label = label or None
    if len(fields) > 3 and fields[3]:
        if broadcast is not None:
            raise AddressSpecError(f"two broadcast addresses in {text!r}")
        broadcast = fields[3]
    if broadcast is not None:
        if ip.version == 6:
            raise AddressSpecError("IPv6 has no broadcast address")
        try:
            ipaddress.IPv4Address(broadcast)
        except ValueError:
            raise AddressSpecError(f"bad broadcast address {broadcast!r}") from None
    if nic and label and len(f"{nic}:{label}") > 15:
        raise AddressSpecError(f"interface label {nic}:{label} is longer than 15 characters")
    if label and ip.version == 6:
        raise AddressSpecError("IPv6 addresses carry no interface label")
    return AddressSpec(str(ip), prefixlen, nic, label, broadcast)
