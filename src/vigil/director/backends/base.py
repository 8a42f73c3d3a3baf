"""The backend interface: what holds the table and moves the traffic.

A backend is told the desired table and the operations that lead there from
what it holds, and applies them as one transaction: all or nothing (on error
it raises `BackendError` and still holds the table it had). Both arguments
come together so each backend uses the form that suits it:

* an operation-at-a-time kernel API (IPVS over netlink) replays `operations`
  (`reconcile` orders them so a service is never emptied in passing);
* a ruleset backend (nftables) rebuilds each touched service's maps from
  `desired` (slot tables from `schedulers.slots.fill_slots`, previous slots
  kept so flows stay put) and commits them in one `nft -j` transaction;
  an empty operation list must change nothing in the kernel;
* the userspace proxy updates its listeners and schedulers in place.

`read()` returns what the backend really holds (the kernel's table at start,
so a restart adopts it instead of flushing it); `stats()` gives ipvsadm's
counters; `available()` says whether one can run here (a reason string when
not). The registry and `choose()` are in the package (`vigil.director.backends`).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields

from vigil.errors import VigilError
from vigil.lvs.operations import Operation, OperationError, apply_operations
from vigil.lvs.syncdaemon import SyncDaemon, SyncState
from vigil.lvs.table import RealKey, ServiceKey, Table


class BackendError(VigilError):
    """A backend could not apply a transaction (nothing of it was applied)."""


def planned_table(current: Table, operations: Sequence[Operation], desired: Table,
                  *, exact: bool = True) -> Table:
    """The table `operations` make of `current`; refused before anything is touched
    when they do not apply, or (exact) when they do not lead to `desired`."""
    try:
        result = apply_operations(current, operations)
    except OperationError as exc:
        raise BackendError(str(exc)) from exc
    if exact and result != desired:
        raise BackendError("operations do not lead to the desired table")
    return result


@dataclass
class Counters:
    """ipvsadm --stats columns."""

    conns: int = 0
    in_packets: int = 0
    out_packets: int = 0
    in_bytes: int = 0
    out_bytes: int = 0

    def add(self, other: Counters) -> None:
        self.conns += other.conns
        self.in_packets += other.in_packets
        self.out_packets += other.out_packets
        self.in_bytes += other.in_bytes
        self.out_bytes += other.out_bytes


@dataclass
class Rates:
    """ipvsadm --rate columns, per second."""

    cps: float = 0.0
    in_pps: float = 0.0
    out_pps: float = 0.0
    in_bps: float = 0.0
    out_bps: float = 0.0


@dataclass
class RealStats:
    active: int = 0  # ActiveConn
    inactive: int = 0  # InActConn
    counters: Counters = field(default_factory=Counters)
    rates: Rates = field(default_factory=Rates)


@dataclass
class ServiceStats:
    counters: Counters = field(default_factory=Counters)
    rates: Rates = field(default_factory=Rates)
    reals: dict[RealKey, RealStats] = field(default_factory=dict)


def clear(numbers: Counters | Rates) -> None:
    """Zero in place: open connections hold references to their counters."""
    for item in fields(numbers):
        setattr(numbers, item.name, type(getattr(numbers, item.name))())


@dataclass(frozen=True)
class Connection:
    """One connection the data path tracks, as `ipvsadm -L -c` lists it."""

    protocol: str  # "TCP", "UDP"
    expire: float  # seconds until it is forgotten if nothing more passes
    state: str  # IPVS's names: ESTABLISHED, FIN_WAIT, UDP, ...
    source: tuple[str, int]
    virtual: tuple[str, int]
    destination: tuple[str, int]


@dataclass(frozen=True)
class Timeouts:
    """`ipvsadm --set tcp tcpfin udp`: idle seconds before a connection is forgotten."""

    tcp: int
    tcpfin: int
    udp: int


class Backend(abc.ABC):
    """Holds a `Table` and makes traffic follow it."""

    name: str = ""
    #: runs IPVS's connection sync daemon (lvs_sync_daemon); others need or have none
    has_sync_daemon: bool = False

    @classmethod
    def available(cls) -> str | None:
        """None when this backend can run here, else why not (one line)."""
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open sockets, probe the kernel, adopt what it holds."""

    @abc.abstractmethod
    async def read(self) -> Table:
        """The table the backend really holds now."""

    @abc.abstractmethod
    async def apply(self, operations: Sequence[Operation], desired: Table) -> None:
        """Apply `operations` (which lead to `desired`) as one transaction."""

    async def stats(self) -> dict[ServiceKey, ServiceStats]:
        return {}

    async def zero(self, keys: Collection[ServiceKey] | None) -> None:
        """ipvsadm -Z: counters and rates of `keys` (None: every service) start again at 0."""
        raise BackendError(f"the {self.name} backend cannot zero counters")

    async def connections(self) -> list[Connection]:
        """ipvsadm -L -c: the connections the data path tracks now."""
        raise BackendError(f"the {self.name} backend cannot list connections")

    async def untracked(self) -> list[ServiceKey]:
        """Services whose connections the data path keeps no state for (-L -c says so)."""
        return []

    async def timeouts(self) -> Timeouts:
        """ipvsadm -L --timeout."""
        raise BackendError(f"the {self.name} backend has no connection timeouts to show")

    async def set_timeouts(self, wanted: Timeouts) -> Timeouts:
        """ipvsadm --set (0 keeps a value); returns what holds now. A backend that
        cannot honour them refuses: a timeout accepted must be one that works."""
        raise BackendError(f"the {self.name} backend cannot set connection timeouts")

    async def sync_daemons(self) -> list[SyncDaemon]:
        """ipvsadm -L --daemon: the connection sync daemons running (none without IPVS)."""
        return []

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        """ipvsadm --start-daemon: keep a peer director's connections in step."""
        raise BackendError(f"the {self.name} backend has no connection sync daemon "
                           "(it is IPVS's)")

    async def stop_sync_daemon(self, state: SyncState) -> None:
        """ipvsadm --stop-daemon."""
        raise BackendError(f"the {self.name} backend has no connection sync daemon "
                           "(it is IPVS's)")

    async def set_active(self, active: bool) -> None:  # noqa: B027 - optional hook
        """Become the active director, or a warm standby (False).

        A standby keeps the same table and runs the same checks, but forwards
        only traffic addressed to this host, so it never captures the VIP's
        packets while its peer holds the VIP. IPVS does that by itself (it
        takes only packets delivered locally), so the default changes nothing;
        a backend that would capture more must narrow itself here."""

    def takes_moved_flows(self) -> bool:
        """Whether packets of a connection begun elsewhere (a flow a router moves here
        from another director) are forwarded now. A data path that is still learning
        drops them; an active-active director announces itself only once this holds."""
        return True

    def settled(self) -> None:  # noqa: B027 - optional hook
        """The director's first round of checks is done: the table it applies now is
        the one it means (a kernel backend that took over live connections stops
        holding back packets it could not place)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets and tasks; the table stays (cleanstop empties it first)."""
