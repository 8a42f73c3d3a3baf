"""IPaddr: the service address, added as an `eth0:N` alias and announced to the segment.

heartbeat's `IPaddr::ip[/bits[/iface][/broadcast]]` (a bare address in
haresources means the same). Start: find the interface by subnet when none is
given (findif), refuse when another host answers for the address (unless
forced), add it through netlink, then send gratuitous ARPs (IPv4) or
unsolicited neighbour advertisements (IPv6) in the background. Stop: remove
it. Status comes from the kernel's address list, never from a state file.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus, bounded
from vigil.agents.ipspec import AddressSpec, AddressSpecError, parse_address
from vigil.agents.options import AgentOptions
from vigil.log import event
from vigil.net import interfaces, link, packets

log = logging.getLogger("vigil.agents.ipaddr")
#: an address another host answers for is asked about again for this long before the
#: start is refused (a peer in a start-up split brain lets it go within a heartbeat)
DUPLICATE_RECHECK = 1.0
DUPLICATE_RECHECK_EVERY = 0.1

SUCCESS = OcfStatus.SUCCESS
#: how long a hand-off waits for the new holder to answer its ARP probe
HANDOFF_PROBE_TIMEOUT = 0.5


class IPaddr(Agent):
    default_interval = 5.0
    default_timeout = 10.0
    #: heartbeat's IPaddr: send_arp -r 10 -i 500.
    arp_count_default = 10
    arp_interval_default = 0.5
    #: IPaddr names every alias (`eth0:0`, `eth0:1`, ...); IPaddr2 only when asked.
    automatic_label = True

    def __init__(self, name: str, args: tuple[str, ...], options: AgentOptions | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        if len(args) != 1:
            raise AgentConfigError(f"{name} takes one argument: ip[/bits[/iface[/broadcast]]]",
                                   OcfStatus.ERR_ARGS)
        try:
            self.spec: AddressSpec = parse_address(args[0])
        except AddressSpecError as exc:
            raise AgentConfigError(f"{name}::{args[0]}: {exc}", OcfStatus.ERR_CONFIGURED) from None
        self._burst: asyncio.Task[int] | None = None
        #: announce and stop never interleave: a re-announcement that found the address
        #: held must not start its burst after a stop removed it
        self._lock = asyncio.Lock()

    # -- settings -------------------------------------------------------------------------
    @property
    def arp_count(self) -> int:
        return self.options.arp_count if self.options.arp_count is not None \
            else self.arp_count_default

    @property
    def arp_interval(self) -> float:
        return self.options.arp_interval if self.options.arp_interval is not None \
            else self.arp_interval_default

    # -- operations -------------------------------------------------------------------------
    async def start(self, timeout: float) -> AgentResult:
        return await bounded(self._start(), timeout, f"{self.label} start")

    async def stop(self, timeout: float) -> AgentResult:
        return await bounded(self._stop(), timeout, f"{self.label} stop")

    async def status(self, timeout: float) -> AgentResult:
        return await bounded(self._status(check_link=False), timeout, f"{self.label} status")

    async def monitor(self, timeout: float) -> AgentResult:
        return await bounded(self._status(check_link=True), timeout, f"{self.label} monitor")

    async def announce(self, timeout: float) -> AgentResult:
        """Send the burst again (after a partition heals the peer may have claimed the address)."""
        async def run() -> AgentResult:
            async with self._lock, interfaces.netlink() as ipr:
                held = await interfaces.holders(ipr, self.spec.ip)
                if not held:
                    return AgentResult(OcfStatus.NOT_RUNNING, f"{self.spec.ip} is not held here")
                await self._announce(ipr, held[0].ifname)
            return AgentResult(SUCCESS, f"announcing {self.spec.ip} on {held[0].ifname}")
        return await bounded(run(), timeout, f"{self.label} announce")

    async def handoff(self, timeout: float) -> AgentResult:
        """After a stop that leaves the address to another host (a split brain settled):
        ask who holds it now and announce it at that host's MAC, for keepers that do not
        announce it themselves (heartbeat 3.0.6 does not). IPv4 only."""
        if self.spec.version == 6:
            return AgentResult(OcfStatus.ERR_UNIMPLEMENTED, "no hand-off for IPv6")

        async def run() -> AgentResult:
            async with self._lock, interfaces.netlink() as ipr:
                if await interfaces.holders(ipr, self.spec.ip):
                    return AgentResult(OcfStatus.ERR_GENERIC, f"{self.spec.ip} is held here")
                try:
                    place = interfaces.find_interface(
                        self.spec.ip, await interfaces.routes(ipr), self.spec.nic,
                        self.spec.prefixlen, self.spec.broadcast)
                except interfaces.NoInterface as exc:
                    return AgentResult(OcfStatus.ERR_GENERIC, str(exc))
                nic = await interfaces.link_by_name(ipr, place.ifname)
            if nic is None:
                return AgentResult(OcfStatus.ERR_CONFIGURED, f"no interface {place.ifname}")
            holder = await link.probe_address(place.ifname, nic.mac, self.spec.ip,
                                              HANDOFF_PROBE_TIMEOUT)
            if not holder:
                return AgentResult(OcfStatus.NOT_RUNNING,
                                   f"nobody answers for {self.spec.ip} on {place.ifname}")
            reply, request = packets.handoff_arp_pair(holder, self.spec.ip, nic.mac)
            if self._burst is not None and not self._burst.done():
                self._burst.cancel()
            first = asyncio.Event()
            self._burst = asyncio.create_task(
                link.announce(place.ifname, nic.mac, self.spec.ip, self.arp_count,
                              self.arp_interval, first,
                              frames={"reply": reply, "request": request}),
                name=f"hand off {self.spec.ip}")
            await first.wait()
            event(log, "address.handed_off", ip=self.spec.ip, ifname=place.ifname,
                  holder=holder, count=self.arp_count, interval=self.arp_interval)
            return AgentResult(SUCCESS, f"announcing {self.spec.ip} at {holder}, its holder")
        return await bounded(run(), timeout, f"{self.label} hand-off")

    async def holder_elsewhere(self, timeout: float) -> AgentResult:
        """Ask the segment, from the interface holding it here, whether another host
        answers for the address too: a peer that kept or took it through a partition
        (heartbeat 3.0.6 restarting after a split takes it at the end of its initdead and
        says so only seconds after the heal). IPv4 only: the peer's answer to an ARP probe."""
        if self.spec.version == 6:
            return AgentResult(OcfStatus.ERR_UNIMPLEMENTED, "no holder probe for IPv6")

        async def run() -> AgentResult:
            async with interfaces.netlink() as ipr:
                held = await interfaces.holders(ipr, self.spec.ip)
                if not held:
                    return AgentResult(OcfStatus.ERR_GENERIC,
                                       f"{self.spec.ip} is not held here")
                ifname = held[0].ifname
                nic = await interfaces.link_by_name(ipr, ifname)
            if nic is None:
                return AgentResult(OcfStatus.ERR_CONFIGURED, f"no interface {ifname}")
            holder = await link.probe_address(ifname, nic.mac, self.spec.ip,
                                              HANDOFF_PROBE_TIMEOUT)
            event(log, "address.holder_probed", ip=self.spec.ip, ifname=ifname,
                  holder=holder or "none")
            if not holder:
                return AgentResult(OcfStatus.NOT_RUNNING,
                                   f"nobody else answers for {self.spec.ip} on {ifname}")
            return AgentResult(SUCCESS, f"{holder} answers for {self.spec.ip} on {ifname} too")
        return await bounded(run(), timeout, f"{self.label} holder probe")

    async def settle(self) -> None:
        if self._burst is not None:  # its end, not its outcome; a cancel of ours goes on
            await asyncio.wait([self._burst])

    # -- implementation ---------------------------------------------------------------------
    async def _start(self) -> AgentResult:
        spec = self.spec
        async with interfaces.netlink() as ipr:
            # each kernel table read once: this runs on the takeover's critical path
            nics = await interfaces.links(ipr)
            known_addresses = await interfaces.addresses(ipr, nics)
            held = [a for a in known_addresses if interfaces.same_ip(a.ip, spec.ip)]
            if held:
                await self._announce(ipr, held[0].ifname)
                return AgentResult(SUCCESS, f"{spec.ip} already held on {held[0].ifname}")
            family = interfaces.AF_INET6 if spec.version == 6 else interfaces.AF_INET
            known_routes = await interfaces.routes(ipr, nics, families=(family,))
            try:
                place = interfaces.find_interface(spec.ip, known_routes, spec.nic,
                                                  spec.prefixlen, spec.broadcast)
            except interfaces.NoInterface as exc:
                return AgentResult(OcfStatus.ERR_GENERIC, str(exc))
            nic = next((n for n in nics if n.name == place.ifname), None)
            if nic is None:
                return AgentResult(OcfStatus.ERR_CONFIGURED, f"no interface {place.ifname}")
            if self.options.duplicate_probe and not self.options.force_address:
                # neighbours to time the segment's round trip against (IPv4): those the
                # kernel knows on the interface, and its routers (there is nearly always one)
                references: list[str] = []
                if ":" not in spec.ip:
                    references = await interfaces.neighbours(ipr, nic.index, exclude=spec.ip)
                    references += [r.gateway for r in known_routes
                                   if r.ifname == place.ifname and r.gateway
                                   and ":" not in r.gateway and r.gateway not in references]
                report: dict[str, float | None] = {}
                holder = await link.probe_address(place.ifname, nic.mac, spec.ip,
                                                  self.options.duplicate_probe_timeout,
                                                  references=references, report=report)
                rtt = report.get("rtt")
                event(log, "address.probed", ip=spec.ip, ifname=place.ifname,
                      holder=holder or "none",
                      waited_ms=round(1000 * (report.get("window") or 0), 1),
                      neighbour_rtt_ms="none" if rtt is None else round(1000 * rtt, 3))
                # a holder that lets go within a moment is the peer leaving a start-up
                # split brain (it releases within a heartbeat): ask again before refusing
                loop = asyncio.get_running_loop()
                until = loop.time() + DUPLICATE_RECHECK
                while holder and loop.time() < until:
                    event(log, "address.holder_seen", ip=spec.ip, ifname=place.ifname,
                          holder=holder, action="asking again before refusing")
                    await asyncio.sleep(DUPLICATE_RECHECK_EVERY)
                    holder = await link.probe_address(place.ifname, nic.mac, spec.ip,
                                                      self.options.duplicate_probe_timeout,
                                                      references=references)
                if holder:
                    event(log, "address.duplicate", level=logging.ERROR, ip=spec.ip,
                          ifname=place.ifname, holder=holder)
                    return AgentResult(
                        OcfStatus.ERR_GENERIC,
                        f"{spec.ip} is already in use on {place.ifname} by {holder}: refusing "
                        "to add it (force_address overrides)")
            label = self._label(place.ifname, known_addresses)
            extra: dict[str, Any] = {}
            if place.broadcast:
                extra["broadcast"] = place.broadcast
            if label:
                extra["label"] = label
            if spec.version == 6:
                extra["flags"] = interfaces.IFA_F_NODAD  # probed above, no 1 s tentative wait
            try:
                await ipr.addr("add", index=nic.index, address=spec.ip,
                               prefixlen=place.prefixlen, **extra)
                if not nic.up:
                    await ipr.link("set", index=nic.index, state="up")
            except Exception as exc:  # netlink errors (EEXIST, EPERM, ...)
                return AgentResult(OcfStatus.ERR_GENERIC,
                                   f"cannot add {spec.ip}/{place.prefixlen} to {place.ifname}: "
                                   f"{exc}")
            event(log, "address.added", ip=spec.ip, prefixlen=place.prefixlen,
                  ifname=place.ifname, label=label or "", broadcast=place.broadcast or "")
            await self._announce(ipr, place.ifname, mac=nic.mac)
        where = f"{place.ifname} ({label})" if label else place.ifname
        return AgentResult(SUCCESS, f"{spec.ip}/{place.prefixlen} added on {where}")

    def _label(self, ifname: str, known: list[interfaces.Address]) -> str | None:
        given = self.spec.full_label()
        if given or self.spec.version == 6 or not self.automatic_label:
            return given
        used = {a.label for a in known if a.label}
        return interfaces.free_label(ifname, used)

    async def _announce(self, ipr: Any, ifname: str, mac: str | None = None) -> None:
        """Start the burst in the background; return once its first frames are out."""
        if self.arp_count <= 0:
            return
        if mac is None:
            nic = await interfaces.link_by_name(ipr, ifname)
            if nic is None:
                return
            mac = nic.mac
        if self._burst is not None and not self._burst.done():
            self._burst.cancel()
        first = asyncio.Event()
        self._burst = asyncio.create_task(
            link.announce(ifname, mac, self.spec.ip, self.arp_count, self.arp_interval, first),
            name=f"announce {self.spec.ip}")
        await first.wait()
        event(log, "address.announcing", ip=self.spec.ip, ifname=ifname, count=self.arp_count,
              interval=self.arp_interval)

    async def _stop(self) -> AgentResult:
        async with self._lock:
            return await self._stop_locked()

    async def _stop_locked(self) -> AgentResult:
        if self._burst is not None and not self._burst.done():
            self._burst.cancel()
        async with interfaces.netlink() as ipr:
            held = await interfaces.holders(ipr, self.spec.ip)
            if not held:
                return AgentResult(SUCCESS, f"{self.spec.ip} was not held")
            for address in held:
                try:
                    await ipr.addr("del", index=address.ifindex, address=address.ip,
                                   prefixlen=address.prefixlen)
                except Exception as exc:
                    return AgentResult(OcfStatus.ERR_GENERIC,
                                       f"cannot remove {self.spec.ip} from {address.ifname}: {exc}")
                event(log, "address.removed", ip=self.spec.ip, ifname=address.ifname)
            if await interfaces.holders(ipr, self.spec.ip):
                return AgentResult(OcfStatus.ERR_GENERIC, f"{self.spec.ip} is still configured")
        return AgentResult(SUCCESS, f"{self.spec.ip} removed from "
                           + ", ".join(a.ifname for a in held))

    async def _status(self, check_link: bool) -> AgentResult:
        async with interfaces.netlink() as ipr:
            held = await interfaces.holders(ipr, self.spec.ip)
            if not held:
                return AgentResult(OcfStatus.NOT_RUNNING, f"{self.spec.ip} is not configured")
            address = held[0]
            if check_link:
                nic = await interfaces.link_by_name(ipr, address.ifname)
                if nic is None or not nic.up:
                    return AgentResult(OcfStatus.ERR_GENERIC,
                                       f"{self.spec.ip} is on {address.ifname}, which is down")
        return AgentResult(SUCCESS, f"running: {address.ip}/{address.prefixlen} on "
                           f"{address.label or address.ifname}")
