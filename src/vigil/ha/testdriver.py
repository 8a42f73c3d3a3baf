"""A *test* group driver: runs groups through `vigil.agents.base.Agent`s of its own.

This is not the resource-agents layer (that one resolves IPaddr, Filesystem,
drbddisk, LSB scripts and OCF agents properly). It exists so the heartbeat
daemon can be tested for real before that layer lands:

* `TestIPaddrAgent` adds and removes a service address with netlink
  (pyroute2) and sends gratuitous ARP on start and on `announce`;
* `TestMarkerAgent` stands for any other resource: a marker file under
  /run/vigil/test-resources/ exists while it "runs".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from pathlib import Path

from vigil.agents.base import Agent, AgentResult, OcfStatus
from vigil.ha.groups import Group
from vigil.log import event

log = logging.getLogger("vigil.ha.testdriver")
MARKER_DIR = Path("/run/vigil/test-resources")
ACTION_TIMEOUT = 60.0
#: gratuitous ARPs sent per announcement, and the gap between them
GARP_COUNT = 3
GARP_INTERVAL = 0.1


def parse_ipaddr(args: tuple[str, ...]) -> tuple[str, int | None, str | None]:
    """`198.51.100.100/24/eth0[/bcast]` -> (address, prefix or None, interface or None)."""
    parts = args[0].split("/") if args else [""]
    address = str(ipaddress.ip_address(parts[0]))
    prefix = int(parts[1]) if len(parts) > 1 and parts[1] else None
    ifname = parts[2] if len(parts) > 2 and parts[2] else None
    if len(args) > 1 and ifname is None:
        ifname = args[1]
    return address, prefix, ifname


class TestIPaddrAgent(Agent):
    """Test agent for `IPaddr::ip[/bits[/iface]]` (and IPaddr2, bare addresses)."""

    __test__ = False  # a test double for the daemon, not a pytest class

    def __init__(self, name: str, args: tuple[str, ...]):
        super().__init__(name, args)
        self.address, self.prefix, self.ifname = parse_ipaddr(args)
        self._background: set[asyncio.Task[None]] = set()
        self._socket: socket.socket | None = None
        self._socket_ifname: str | None = None

    def _locate(self, ipr) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        """(ifindex, prefix): given, or found from the route to the address (findif)."""
        index = None
        prefix = self.prefix
        if self.ifname:
            found = ipr.link_lookup(ifname=self.ifname)
            if not found:
                raise OSError(f"no interface {self.ifname}")
            index = found[0]
        if index is None or prefix is None:
            family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
            for route in ipr.get_routes(family=family, dst=self.address):
                if route.get("RTA_GATEWAY"):
                    continue
                index = index if index is not None else route.get("RTA_OIF")
                prefix = prefix if prefix is not None else route["dst_len"]
                break
            for candidate in ipr.get_routes(family=family):
                if prefix is not None and index is not None:
                    break
                dst = candidate.get("RTA_DST")
                if dst and ipaddress.ip_address(self.address) in ipaddress.ip_network(
                        f"{dst}/{candidate['dst_len']}", strict=False):
                    index = index if index is not None else candidate.get("RTA_OIF")
                    prefix = prefix if prefix is not None else candidate["dst_len"]
        if index is None:
            raise OSError(f"no interface reaches {self.address}")
        return int(index), int(prefix if prefix is not None else
                               (128 if ":" in self.address else 32))

    def _present(self) -> bool:
        from vigil.kernel.netlink import iproute

        with iproute() as ipr:
            return any(a.get("IFA_ADDRESS") == self.address for a in ipr.get_addr())

    def _add(self) -> None:
        from vigil.kernel.netlink import iproute

        with iproute() as ipr:
            index, prefix = self._locate(ipr)
            if any(a.get("IFA_ADDRESS") == self.address for a in ipr.get_addr(index=index)):
                return
            extra = {"flags": 0x02} if ":" in self.address else {}  # IFA_F_NODAD
            ipr.addr("add", index=index, address=self.address, prefixlen=prefix, **extra)

    def _remove(self) -> None:
        from vigil.kernel.netlink import iproute

        with iproute() as ipr:
            for entry in ipr.get_addr():
                if entry.get("IFA_ADDRESS") == self.address:
                    ipr.addr("del", index=entry["index"], address=self.address,
                             prefixlen=entry["prefixlen"])

    def _garp(self) -> None:
        """Gratuitous ARP (request and reply) for an IPv4 address, on its interface."""
        if ":" in self.address:
            return
        from vigil.kernel.netlink import iproute

        with iproute() as ipr:
            index, _ = self._locate(ipr)
            link = ipr.get_links(index)[0]
            ifname = link.get("IFLA_IFNAME")
            mac = bytes.fromhex(link.get("IFLA_ADDRESS").replace(":", ""))
        ip = socket.inet_aton(self.address)
        sock = self._packet_socket(ifname)
        for op, target_mac in ((1, b"\0" * 6), (2, b"\xff" * 6)):
            frame = (b"\xff" * 6 + mac + b"\x08\x06"
                     + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
                     + mac + ip + target_mac + ip)
            sock.send(frame)

    def _packet_socket(self, ifname: str) -> socket.socket:
        """A send-only AF_PACKET socket, kept open.

        Protocol 0: a socket bound to a protocol registers a receive hook, and
        closing any packet socket waits for an RCU grace period (synchronize_net):
        together 15 to 30 ms on a loaded machine, paid on every takeover otherwise.
        """
        if self._socket is None or self._socket_ifname != ifname:
            if self._socket is not None:
                self._socket.close()
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            sock.bind((ifname, 0))
            self._socket, self._socket_ifname = sock, ifname
        return self._socket

    async def start(self, timeout: float) -> AgentResult:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._add), timeout)
        except (OSError, TimeoutError) as exc:
            return AgentResult(OcfStatus.ERR_GENERIC, f"cannot add {self.address}: {exc}")
        # The first announcement now, the repeats in the background (like send_arp).
        await self._announce_once()
        task = asyncio.get_running_loop().create_task(self.announcements(repeats_only=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return AgentResult(OcfStatus.SUCCESS, f"{self.address} added")

    async def stop(self, timeout: float) -> AgentResult:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._remove), timeout)
        except (OSError, TimeoutError) as exc:
            return AgentResult(OcfStatus.ERR_GENERIC, f"cannot remove {self.address}: {exc}")
        return AgentResult(OcfStatus.SUCCESS, f"{self.address} removed")

    async def status(self, timeout: float) -> AgentResult:
        try:
            present = await asyncio.wait_for(asyncio.to_thread(self._present), timeout)
        except (OSError, TimeoutError) as exc:
            return AgentResult(OcfStatus.ERR_GENERIC, str(exc))
        return AgentResult(OcfStatus.SUCCESS if present else OcfStatus.NOT_RUNNING)

    async def _announce_once(self) -> bool:
        try:
            await asyncio.to_thread(self._garp)
            return True
        except OSError as exc:
            event(log, "garp.failed", logging.WARNING, address=self.address, error=exc)
            return False

    async def announce(self, timeout: float) -> AgentResult:
        await asyncio.wait_for(self.announcements(), timeout)
        return AgentResult(OcfStatus.SUCCESS, f"{self.address} announced")

    async def announcements(self, repeats_only: bool = False) -> None:
        for attempt in range(GARP_COUNT):
            if (attempt or not repeats_only) and not await self._announce_once():
                return
            if attempt + 1 < GARP_COUNT:
                await asyncio.sleep(GARP_INTERVAL)


class TestMarkerAgent(Agent):
    """Test agent for any other resource: a marker file exists while it runs."""

    __test__ = False  # a test double for the daemon, not a pytest class

    @property
    def marker(self) -> Path:
        return MARKER_DIR / self.label.replace("/", "_")

    async def start(self, timeout: float) -> AgentResult:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text("running\n")
        return AgentResult(OcfStatus.SUCCESS)

    async def stop(self, timeout: float) -> AgentResult:
        self.marker.unlink(missing_ok=True)
        return AgentResult(OcfStatus.SUCCESS)

    async def status(self, timeout: float) -> AgentResult:
        return AgentResult(OcfStatus.SUCCESS if self.marker.exists() else OcfStatus.NOT_RUNNING)


def agent_for_resource(resource: str) -> Agent:
    name, *args = resource.split("::")
    if name in ("IPaddr", "IPaddr2"):
        return TestIPaddrAgent(name, tuple(args))
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(name.split("/")[0])
        return TestIPaddrAgent("IPaddr", (name,))
    return TestMarkerAgent(name, tuple(args))


class TestGroupDriver:
    """`GroupDriver` over the test agents: left-to-right start, right-to-left stop."""

    __test__ = False  # a test double for the daemon, not a pytest class

    name = "test"

    def __init__(self, timeout: float = ACTION_TIMEOUT):
        self.timeout = timeout
        self._agents: dict[str, Agent] = {}

    def agents(self, group: Group) -> list[Agent]:
        found = []
        for resource in group.resources:
            if resource not in self._agents:
                self._agents[resource] = agent_for_resource(resource)
            found.append(self._agents[resource])
        return found

    async def start(self, group: Group) -> bool:
        started: list[Agent] = []
        for agent in self.agents(group):
            result = await agent.start(self.timeout)
            event(log, "resource.start", logging.INFO if result.ok else logging.ERROR,
                  resource=agent.label, status=result.status.name, message=result.message)
            if not result.ok:
                return False
            started.append(agent)
        return True

    async def stop(self, group: Group) -> bool:
        ok = True
        for agent in reversed(self.agents(group)):
            result = await agent.stop(self.timeout)
            event(log, "resource.stop", logging.INFO if result.ok else logging.ERROR,
                  resource=agent.label, status=result.status.name, message=result.message)
            ok = ok and result.ok
        return ok

    async def held(self, group: Group) -> bool:
        for agent in self.agents(group):
            if (await agent.status(self.timeout)).status is not OcfStatus.NOT_RUNNING:
                return True
        return False

    async def announce(self, group: Group) -> None:
        for agent in self.agents(group):
            if isinstance(agent, TestIPaddrAgent):
                await agent.announce(self.timeout)
