"""SendArp: announce an address on an interface without adding it (`SendArp::ip/iface`).

For an address another agent manages, to be announced on one more
interface. Start sends the burst; status is the pseudo state.
"""

from __future__ import annotations

import asyncio
import ipaddress

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus, bounded
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.pseudo import PseudoState
from vigil.net import interfaces, link


class SendArp(Agent):
    default_interval = 30.0
    default_timeout = 10.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        if len(args) != 1 or "/" not in args[0]:
            raise AgentConfigError("SendArp takes ip/iface", OcfStatus.ERR_ARGS)
        ip, _, rest = args[0].partition("/")
        self.ifname = rest.split("/")[-1]
        try:
            self.ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise AgentConfigError(f"SendArp: {ip!r} is not an IP address",
                                   OcfStatus.ERR_CONFIGURED) from None
        self.state = PseudoState((paths or AgentPaths()).state_dir, self.label)
        self._burst: asyncio.Task[int] | None = None

    async def _send(self) -> AgentResult:
        async with interfaces.netlink() as ipr:
            nic = await interfaces.link_by_name(ipr, self.ifname)
        if nic is None:
            return AgentResult(OcfStatus.ERR_CONFIGURED, f"no interface {self.ifname}")
        count = self.options.arp_count if self.options.arp_count is not None else 5
        interval = self.options.arp_interval if self.options.arp_interval is not None else 0.2
        first = asyncio.Event()
        self._burst = asyncio.create_task(link.announce(self.ifname, nic.mac, self.ip, count,
                                                        interval, first))
        await first.wait()
        return AgentResult(OcfStatus.SUCCESS, f"announcing {self.ip} on {self.ifname}")

    async def start(self, timeout: float) -> AgentResult:
        result = await bounded(self._send(), timeout, f"{self.label} start")
        if result.ok:
            self.state.set()
        return result

    async def announce(self, timeout: float) -> AgentResult:
        if not self.state.running():
            return AgentResult(OcfStatus.NOT_RUNNING, "not started")
        return await bounded(self._send(), timeout, f"{self.label} announce")

    async def stop(self, timeout: float) -> AgentResult:
        if self._burst is not None:
            self._burst.cancel()
        self.state.clear()
        return AgentResult(OcfStatus.SUCCESS, "stopped")

    async def status(self, timeout: float) -> AgentResult:
        if self.state.running():
            return AgentResult(OcfStatus.SUCCESS, "running")
        return AgentResult(OcfStatus.NOT_RUNNING, "stopped")

    async def settle(self) -> None:
        if self._burst is not None:  # its end, not its outcome; a cancel of ours goes on
            await asyncio.wait([self._burst])
