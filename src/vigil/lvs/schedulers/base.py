"""What every scheduler sees: destinations with weights, a flow, and connection counts.

Schedulers are pure: `update()` gives them the service's destinations (after
every table change), `pick()` chooses one for a new connection from the flow
and the current load. They keep only their own position (rr, wrr) or slot
table (sh, dh, mh); the caller owns the connection counts.
"""

from __future__ import annotations

import abc
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vigil.lvs.table import RealKey, RealServer


@dataclass(frozen=True)
class Dest:
    """A destination as a scheduler sees it."""

    key: RealKey
    weight: int = 1
    upper: int = 0  # connection limit (-x); 0 = none

    @classmethod
    def of(cls, real: RealServer) -> Dest:
        return cls(real.key, real.weight, real.upper)


@dataclass(frozen=True)
class Flow:
    """The addresses of a new connection (what hash schedulers hash)."""

    src: str
    sport: int
    dst: str
    dport: int


@dataclass
class Load:
    """Connections of one destination: open (active) and closing (inactive)."""

    active: int = 0
    inactive: int = 0

    @property
    def overhead(self) -> int:
        """IPVS's cost of a destination: an active connection weighs 256 inactive ones."""
        return (self.active << 8) + self.inactive


NO_LOAD: Mapping[RealKey, Load] = {}
_ZERO = Load()


def load_of(load: Mapping[RealKey, Load], key: RealKey) -> Load:
    return load.get(key, _ZERO)


def usable(dest: Dest, load: Mapping[RealKey, Load]) -> bool:
    """Weight above 0 and not over its connection limit."""
    if dest.weight <= 0:
        return False
    if dest.upper:
        current = load_of(load, dest.key)
        return current.active + current.inactive < dest.upper
    return True


def address_bytes(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def stable_hash(data: bytes, salt: bytes = b"") -> int:
    """A 64-bit hash that is the same in every process and on every director."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=salt[:16]).digest(), "big")


class Scheduler(abc.ABC):
    """One scheduling algorithm (ipvsadm -s NAME)."""

    name: str = ""
    #: Schedulers that choose by hashing need no connection counts.
    hashing: bool = False

    def __init__(self, flags: Sequence[str] = ()):
        self.flags = frozenset(flags)
        self.dests: tuple[Dest, ...] = ()

    def update(self, dests: Sequence[Dest]) -> None:
        """The service's destinations changed (added, removed, re-weighted)."""
        self.dests = tuple(dests)

    @abc.abstractmethod
    def pick(self, flow: Flow, load: Mapping[RealKey, Load] = NO_LOAD) -> RealKey | None:
        """The destination for a new connection, or None when none can take it."""
