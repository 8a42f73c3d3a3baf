"""The source address of health checks: the director's own, never a virtual service's.

On a director the virtual addresses sit on the same interface as its own
address. When the kernel prefers a virtual address as the source of its own
connections (IPv6 picks among equal candidates by rules a new address can
win, once its duplicate detection ends), a direct-routing real server, which
holds that address on lo, answers the check to itself: the check times out
and a healthy server is taken out. So a check whose kernel-chosen source is
a virtual address binds another address of the outgoing interface first.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from vigil.clock import Clock, MonotonicClock

#: IFA_F_* flags that make an address a bad source
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
UNUSABLE = IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE
RT_SCOPE_UNIVERSE = 0
#: how long a choice is kept: addresses come and go with failovers
CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class LocalAddress:
    """One address of the outgoing interface, as netlink reports it."""

    address: str
    prefixlen: int
    scope: int = RT_SCOPE_UNIVERSE
    flags: int = 0


def canonical(address: str) -> str:
    return ipaddress.ip_address(address).compressed


def pick_source(kernel_choice: str | None, destination: str,
                candidates: Sequence[LocalAddress], virtuals: frozenset[str]) -> str | None:
    """The address to bind, or None to let the kernel choose (its choice is not virtual).

    Among the interface's usable addresses of the destination's family that are
    not virtual, one on the destination's subnet wins; then the first listed.
    """
    if kernel_choice is None or canonical(kernel_choice) not in virtuals:
        return None
    target = ipaddress.ip_address(destination)
    usable = [c for c in candidates
              if ipaddress.ip_address(c.address).version == target.version
              and c.scope == RT_SCOPE_UNIVERSE and not c.flags & UNUSABLE
              and canonical(c.address) not in virtuals]
    for candidate in usable:
        network = ipaddress.ip_interface(f"{candidate.address}/{candidate.prefixlen}").network
        if target in network:
            return candidate.address
    return usable[0].address if usable else None


def kernel_source(destination: str) -> tuple[str, int] | None:
    """The source address the kernel would use towards `destination`, and its family.

    A connected UDP socket sends nothing: connect() only runs route selection.
    """
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((destination, 9))
            return str(probe.getsockname()[0]).split("%")[0], family
    except OSError:
        return None


def interface_addresses(destination: str) -> list[LocalAddress]:
    """The addresses of the interface the route to `destination` leaves by (netlink).

    pyroute2's synchronous socket refuses to run inside an event loop's thread:
    the query runs in a worker thread (rarely: only when the kernel would pick a
    virtual address, then cached).
    """
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        return worker.submit(_interface_addresses, destination).result(timeout=2.0)


def _interface_addresses(destination: str) -> list[LocalAddress]:
    from vigil.kernel.netlink import iproute

    with iproute() as ipr:
        routes = ipr.route("get", dst=destination)
        if not routes:
            return []
        oif = routes[0].get_attr("RTA_OIF")
        family = socket.AF_INET6 if ":" in destination else socket.AF_INET
        found = []
        for message in ipr.get_addr(family=family, index=oif):
            flags = message.get_attr("IFA_FLAGS")
            found.append(LocalAddress(
                address=str(message.get_attr("IFA_ADDRESS")),
                prefixlen=int(message["prefixlen"]), scope=int(message["scope"]),
                flags=int(flags if flags is not None else message["flags"])))
        return found


class SourceChooser:
    """Which address each check binds to, decided per real server and cached briefly."""

    def __init__(self, clock: Clock | None = None,
                 kernel: Callable[[str], tuple[str, int] | None] = kernel_source,
                 addresses: Callable[[str], list[LocalAddress]] = interface_addresses):
        self.clock = clock or MonotonicClock()
        self._kernel = kernel
        self._addresses = addresses
        self.virtuals: frozenset[str] = frozenset()
        self._cache: dict[str, tuple[float, str | None]] = {}

    def set_virtuals(self, addresses: Iterable[str]) -> None:
        virtuals = frozenset(canonical(a) for a in addresses if a)
        if virtuals != self.virtuals:
            self.virtuals = virtuals
            self._cache.clear()

    def source_for(self, destination: str) -> str | None:
        if not self.virtuals:
            return None
        now = self.clock.now()
        known = self._cache.get(destination)
        if known is not None and known[0] > now:
            return known[1]
        chosen = self._choose(destination)
        self._cache[destination] = (now + CACHE_SECONDS, chosen)
        return chosen

    def _choose(self, destination: str) -> str | None:
        kernel = self._kernel(destination)
        if kernel is None or canonical(kernel[0]) not in self.virtuals:
            return None
        try:
            candidates = self._addresses(destination)
        except Exception:  # netlink trouble: the kernel's choice is all there is
            return None
        return pick_source(kernel[0], destination, candidates, self.virtuals)
