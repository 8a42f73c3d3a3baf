"""IPsrcaddr: make the service address the source of outgoing traffic (`IPsrcaddr::ip`).

Sets the preferred source (`src`) of the default route; needs exactly one
IPv4 default route, as heartbeat's does. Stop puts the route back without a
preferred source. Status reads the route from the kernel.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus, bounded
from vigil.agents.options import AgentOptions
from vigil.net import interfaces


class IPsrcaddr(Agent):
    default_interval = 10.0
    default_timeout = 10.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None):
        super().__init__(name, args)
        if len(args) != 1:
            raise AgentConfigError("IPsrcaddr takes one argument: the address",
                                   OcfStatus.ERR_ARGS)
        try:
            address = ipaddress.ip_address(args[0].split("/")[0])
        except ValueError:
            raise AgentConfigError(f"IPsrcaddr: {args[0]!r} is not an IP address",
                                   OcfStatus.ERR_CONFIGURED) from None
        if address.version != 4:
            raise AgentConfigError("IPsrcaddr handles IPv4 only", OcfStatus.ERR_CONFIGURED)
        self.ip = str(address)

    @staticmethod
    async def _default_route(ipr: Any) -> tuple[interfaces.Route | None, str]:
        found = [r for r in await interfaces.routes(ipr)
                 if r.network == "0.0.0.0/0" and r.table == interfaces.RT_TABLE_MAIN]
        if len(found) != 1:
            return None, f"need exactly one IPv4 default route, found {len(found)}"
        return found[0], ""

    async def _set(self, source: str | None) -> AgentResult:
        async with interfaces.netlink() as ipr:
            route, problem = await self._default_route(ipr)
            if route is None:
                return AgentResult(OcfStatus.ERR_GENERIC, problem)
            nic = await interfaces.link_by_name(ipr, route.ifname)
            if nic is None:
                return AgentResult(OcfStatus.ERR_GENERIC, f"no interface {route.ifname}")
            spec: dict[str, Any] = {"dst": "0.0.0.0/0", "oif": nic.index}
            if route.gateway:
                spec["gateway"] = route.gateway
            if source:
                spec["prefsrc"] = source
            try:
                await ipr.route("replace", **spec)
            except Exception as exc:
                return AgentResult(OcfStatus.ERR_GENERIC, f"cannot change the default route: {exc}")
        what = f"source {source}" if source else "no preferred source"
        return AgentResult(OcfStatus.SUCCESS, f"default route via {route.gateway} has {what}")

    async def start(self, timeout: float) -> AgentResult:
        return await bounded(self._set(self.ip), timeout, f"{self.label} start")

    async def stop(self, timeout: float) -> AgentResult:
        status = await self.status(timeout)
        if status.status is OcfStatus.NOT_RUNNING:
            return AgentResult(OcfStatus.SUCCESS, status.message)
        return await bounded(self._set(None), timeout, f"{self.label} stop")

    async def status(self, timeout: float) -> AgentResult:
        async def run() -> AgentResult:
            async with interfaces.netlink() as ipr:
                route, _ = await self._default_route(ipr)
            if route is not None and route.prefsrc and interfaces.same_ip(route.prefsrc, self.ip):
                return AgentResult(OcfStatus.SUCCESS, f"running: default route source {self.ip}")
            return AgentResult(OcfStatus.NOT_RUNNING, f"{self.ip} is not the default source")
        return await bounded(run(), timeout, f"{self.label} status")
