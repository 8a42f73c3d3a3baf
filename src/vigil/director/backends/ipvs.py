"""The IPVS backend: the kernel's own LVS table, driven over generic netlink (pyroute2).

Chosen first by `auto` wherever the kernel has IPVS (a stock Debian kernel: the
`ip_vs` module is loaded on first use, as ipvsadm does). IPVS applies one
operation per netlink request, so a transaction is the operations replayed in
`reconcile`'s order with an undo list: if one fails, the ones already done are
reversed and nothing of the transaction stays. `read()` lists the kernel's
table (a restart adopts it), `stats()` gives ipvsadm's counters, connection
counts and the kernel's own rate estimates.

All netlink calls run on one worker thread that owns the socket (pyroute2's
synchronous API keeps its own event loop, which must not meet the director's).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

from vigil import log as vlog
from vigil.director.backends.base import (
    Backend,
    BackendError,
    Connection,
    Counters,
    Rates,
    RealStats,
    ServiceStats,
    Timeouts,
    planned_table,
)
from vigil.lvs.operations import (
    AddReal,
    AddService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    Operation,
    apply_operations,
)
from vigil.lvs.syncdaemon import SyncDaemon, SyncState, decode
from vigil.lvs.table import (
    Forward,
    Protocol,
    RealKey,
    RealServer,
    ServiceKey,
    Table,
    VirtualService,
)

log = logging.getLogger("vigil.director.ipvs")

#: include/uapi/linux/ip_vs.h
FWD_MASQ, FWD_LOCAL, FWD_TUNNEL, FWD_ROUTE = 0, 1, 2, 3
FWD_METHOD = {Forward.MASQ: FWD_MASQ, Forward.IPIP: FWD_TUNNEL, Forward.GATE: FWD_ROUTE}
F_PERSISTENT, F_HASHED, F_ONEPACKET = 0x0001, 0x0002, 0x0004
F_SCHED1, F_SCHED2, F_SCHED3 = 0x0008, 0x0010, 0x0020
#: ipvsadm -b names per scheduler for the three scheduler flags.
SCHED_FLAG_NAMES = {
    "sh": ("sh-fallback", "sh-port", "flag-3"),
    "mh": ("mh-fallback", "mh-port", "flag-3"),
}
GENERIC_FLAG_NAMES = ("flag-1", "flag-2", "flag-3")
PROTOCOL_NUMBER = {Protocol.TCP: socket.IPPROTO_TCP, Protocol.UDP: socket.IPPROTO_UDP}
ENOENT = 2
#: the daemon commands of IPVS's generic netlink family (include/uapi/linux/ip_vs.h)
IPVS_CMD_NEW_DAEMON, IPVS_CMD_DEL_DAEMON, IPVS_CMD_GET_DAEMON = 9, 10, 11
IPVS_CMD_SET_CONFIG, IPVS_CMD_GET_CONFIG, IPVS_CMD_ZERO = 12, 13, 16


def _flag_names(scheduler: str) -> tuple[str, str, str]:
    return SCHED_FLAG_NAMES.get(scheduler, GENERIC_FLAG_NAMES)


def service_attrs(service: VirtualService) -> dict[str, Any]:
    """A `VirtualService` as IPVSService attributes (what ipvsadm -A/-E sends)."""
    key = service.key
    af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
    attrs: dict[str, Any] = {"af": af}
    if key.protocol is Protocol.FWM:
        attrs["fwmark"] = key.fwmark
        attrs["protocol"] = socket.IPPROTO_TCP  # ipvsadm sends it too; ignored for marks
    else:
        attrs.update(protocol=PROTOCOL_NUMBER[key.protocol], addr=key.address, port=key.port)
    flags = 0
    if service.persistent is not None:
        flags |= F_PERSISTENT
    if service.ops:
        flags |= F_ONEPACKET
    names = _flag_names(service.scheduler)
    for bit, name in zip((F_SCHED1, F_SCHED2, F_SCHED3), names, strict=True):
        if name in service.sched_flags:
            flags |= bit
    attrs["sched_name"] = service.scheduler
    attrs["flags"] = {"flags": flags, "mask": 0xFFFFFFFF}
    attrs["timeout"] = service.persistent or 0
    attrs["netmask"] = _netmask(service)
    return attrs


def _netmask(service: VirtualService) -> str:
    """Persistence granularity: a mask for IPv4; for IPv6 the kernel reads a prefix
    length from the same 32-bit field (pyroute2 only knows the IPv4 form)."""
    if service.key.family == 6:
        prefix = int(service.netmask) if service.netmask and service.netmask.isdigit() else 128
        return str(ipaddress.IPv4Address(prefix))
    return service.netmask or "255.255.255.255"


def real_attrs(real: RealServer, family: int) -> dict[str, Any]:
    return {
        "addr": real.address, "port": real.port,
        "addr_family": socket.AF_INET6 if family == 6 else socket.AF_INET,
        "fwd_method": FWD_METHOD[real.forward], "weight": real.weight,
        "u_thresh": real.upper, "l_thresh": real.lower,
    }


def _get(message: Any, name: str, default: Any = None) -> Any:
    value = message.get(name) if hasattr(message, "get") else None
    return default if value is None else value


def service_from_attrs(attrs: dict[str, Any]) -> VirtualService:
    """What the kernel lists back as a `VirtualService` (without its reals)."""
    family = 6 if attrs.get("af") == socket.AF_INET6 else 4
    mark = attrs.get("fwmark") or 0
    if mark:
        key = ServiceKey.fwm(mark, family)
    else:
        protocol = {socket.IPPROTO_TCP: Protocol.TCP,
                    socket.IPPROTO_UDP: Protocol.UDP}[attrs["protocol"]]
        key = ServiceKey(protocol, str(attrs["addr"]), attrs["port"])
    flags_value = attrs.get("flags") or {}
    flags = flags_value.get("flags", 0) if isinstance(flags_value, dict) else int(flags_value)
    scheduler = attrs.get("sched_name") or "wlc"
    names = _flag_names(scheduler)
    sched_flags = tuple(name for bit, name in zip((F_SCHED1, F_SCHED2, F_SCHED3), names,
                                                  strict=True) if flags & bit)
    persistent = attrs.get("timeout") if flags & F_PERSISTENT else None
    netmask = None
    raw = attrs.get("netmask")
    if flags & F_PERSISTENT and raw is not None:
        if family == 6:
            prefix = int(ipaddress.IPv4Address(str(raw)))
            netmask = None if prefix == 128 else str(prefix)
        else:
            netmask = None if str(raw) == "255.255.255.255" else str(raw)
    return VirtualService(key, scheduler, persistent, netmask, sched_flags,
                          bool(flags & F_ONEPACKET))


def real_from_attrs(attrs: dict[str, Any], local_forward: Forward = Forward.GATE
                    ) -> RealServer:
    method = attrs.get("fwd_method", FWD_ROUTE) & 0x7
    forward = {FWD_MASQ: Forward.MASQ, FWD_TUNNEL: Forward.IPIP,
               FWD_ROUTE: Forward.GATE}.get(method, local_forward)
    return RealServer(str(attrs["addr"]), attrs.get("port", 0), attrs.get("weight", 0),
                      forward, attrs.get("u_thresh", 0), attrs.get("l_thresh", 0))


def _nla(message: Any, name: str) -> dict[str, Any]:
    """The attributes of a service or dest message as a plain dict (short names)."""
    nested = message.get_attr(name)
    prefix = nested.prefix
    out: dict[str, Any] = {}
    for key, value in nested["attrs"]:
        short = key[len(prefix):].lower() if key.startswith(prefix) else key.lower()
        out[short] = value
    return out


def _stats(attrs: dict[str, Any]) -> tuple[Counters, Rates]:
    raw = attrs.get("stats64") or attrs.get("stats")
    values: dict[str, int] = {}
    if raw is not None:
        for key, value in raw["attrs"]:
            values[key.replace("IPVS_STATS_ATTR_", "").lower()] = value
    counters = Counters(conns=values.get("conns", 0), in_packets=values.get("inpkts", 0),
                        out_packets=values.get("outpkts", 0),
                        in_bytes=values.get("inbytes", 0), out_bytes=values.get("outbytes", 0))
    rates = Rates(cps=values.get("cps", 0), in_pps=values.get("inpps", 0),
                  out_pps=values.get("outpps", 0), in_bps=values.get("inbps", 0),
                  out_bps=values.get("outbps", 0))
    return counters, rates


#: the kernel's connection table, which ipvsadm -L -c reads too
CONN_PROC_FILE = "/proc/net/ip_vs_conn"


def _proc_address(text: str) -> str:
    """An address as /proc/net/ip_vs_conn prints it: 8 hex digits, or IPv6 in full."""
    if ":" in text:
        return str(ipaddress.IPv6Address(text))
    if len(text) != 8:
        raise ValueError(f"not an address: {text!r}")
    return str(ipaddress.IPv4Address(int(text, 16)))


def parse_connections(text: str) -> list[Connection]:
    """/proc/net/ip_vs_conn's lines (after its title) as connections; a line that does
    not read as one is left out, as ipvsadm leaves it out."""
    found = []
    for line in text.splitlines()[1:]:
        words = line.split()
        if len(words) < 9:
            continue
        protocol, caddr, cport, vaddr, vport, daddr, dport, state, expires = words[:9]
        try:
            found.append(Connection(
                protocol, float(int(expires)), state,
                (_proc_address(caddr), int(cport, 16)), (_proc_address(vaddr), int(vport, 16)),
                (_proc_address(daddr), int(dport, 16))))
        except ValueError:
            continue
    return found


def _read_connections() -> list[Connection]:
    try:
        with open(CONN_PROC_FILE, encoding="ascii", errors="replace") as handle:
            return parse_connections(handle.read())
    except OSError as exc:
        raise BackendError(f"cannot read {CONN_PROC_FILE}: {exc.strerror}") from exc


def _open_ipvs() -> Any:
    """An IPVS netlink socket; loads ip_vs first if the family is missing (as ipvsadm)."""
    from pyroute2 import IPVS
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return IPVS()
    except NetlinkError as exc:
        if exc.code != ENOENT or shutil.which("modprobe") is None:
            raise
    subprocess.run(["modprobe", "ip_vs"], capture_output=True, check=False, timeout=30)
    return IPVS()


@functools.cache
def _command_message() -> Any:
    """IPVS's generic netlink message with IPVS_CMD_ATTR_DAEMON and the timeouts spelled
    out (pyroute2's own message leaves them raw); for the daemon and config commands."""
    from pyroute2.netlink import genlmsg, nla

    class command_message(genlmsg):  # type: ignore[misc]
        prefix = "IPVS_CMD_ATTR_"
        nla_map = (
            ("IPVS_CMD_ATTR_UNSPEC", "none"),
            ("IPVS_CMD_ATTR_SERVICE", "hex"),
            ("IPVS_CMD_ATTR_DEST", "hex"),
            ("IPVS_CMD_ATTR_DAEMON", "daemon"),
            ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
            ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
            ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
        )

        class daemon(nla):  # type: ignore[misc]
            prefix = "IPVS_DAEMON_ATTR_"
            nla_map = (
                ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
                ("IPVS_DAEMON_ATTR_STATE", "uint32"),
                ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
                ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
                ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
                ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
                ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
                ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
                ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
            )

    return command_message


def _u32_attribute(value: Any) -> int:
    """A u32 attribute of pyroute2's own message, which hands it over as hex text."""
    raw = _raw_attribute(value)
    if len(raw) != 4:
        raise BackendError("IPVS answered with a damaged timeout")
    number: int = int.from_bytes(raw, sys.byteorder)
    return number


def _raw_attribute(value: Any) -> bytes:
    """pyroute2 hands an attribute it has no type for as "0a:0b:..." text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.replace(":", ""))
        except ValueError:
            raise BackendError("IPVS answered with a damaged sync daemon") from None
    raise BackendError("IPVS answered with a damaged sync daemon")


class IpvsBackend(Backend):
    name = "ipvs"
    has_sync_daemon = True

    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return "needs root (CAP_NET_ADMIN) to drive IPVS"
        try:
            from pyroute2.netlink.exceptions import NetlinkError
        except ImportError:  # pragma: no cover - pyroute2 is a dependency
            return "pyroute2 is missing"
        try:
            _open_ipvs().close()
        except NetlinkError as exc:
            if exc.code == ENOENT:
                return "this kernel has no IPVS (no 'IPVS' generic netlink family)"
            return f"IPVS not usable: {exc}"
        except OSError as exc:
            return f"IPVS not usable: {exc}"
        return None

    def __init__(self, opener: Callable[[], Any] = _open_ipvs):
        self._opener = opener
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vigil-ipvs")
        self._ipvs: Any = None
        self._table = Table()
        self._local_forward: dict[tuple[ServiceKey, RealKey], Forward] = {}

    async def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        def open_socket() -> None:
            self._ipvs = self._opener()

        await self._call(open_socket)
        self._table = await self._call(self._read_kernel)
        vlog.event(log, "ipvs.adopted", services=len(self._table))

    async def close(self) -> None:
        def close_socket() -> None:
            if self._ipvs is not None:
                self._ipvs.close()
                self._ipvs = None

        await self._call(close_socket)
        self._executor.shutdown(wait=False)

    # -- reading -------------------------------------------------------------------------
    def _dump(self) -> list[tuple[dict[str, Any], Any, list[tuple[dict[str, Any], Any]]]]:
        from pyroute2 import IPVSService

        out = []
        for message in self._ipvs.service("dump"):
            attrs = _nla(message, "IPVS_CMD_ATTR_SERVICE")
            service = IPVSService.from_message(message)
            dests = [(_nla(d, "IPVS_CMD_ATTR_DEST"), d)
                     for d in self._ipvs.dest("dump", service=service)]
            out.append((attrs, message, dests))
        return out

    def _read_kernel(self) -> Table:
        services = []
        for attrs, _, dests in self._dump():
            service = service_from_attrs(attrs)
            reals = []
            for dest, _ in dests:
                probe = real_from_attrs(dest)
                forward = self._local_forward.get((service.key, probe.key), Forward.GATE)
                reals.append(real_from_attrs(dest, forward))
            services.append(service.with_reals(reals))
        return Table.of(services)

    async def read(self) -> Table:
        return self._table

    # -- applying ------------------------------------------------------------------------
    async def apply(self, operations: Sequence[Operation], desired: Table) -> None:
        result = planned_table(self._table, operations, desired)
        if not operations:
            return
        await self._call(self._transaction, list(operations))
        for op in operations:
            if isinstance(op, (AddReal, EditReal)):
                self._local_forward[(op.service, op.real.key)] = op.real.forward
        self._table = result

    def _transaction(self, operations: list[Operation]) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        done: list[Callable[[], None]] = []
        table = self._table
        for op in operations:
            try:
                undo = self._do(op, table)
                table = apply_operations(table, [op])
            except (NetlinkError, OSError) as exc:
                for reverse in reversed(done):
                    try:
                        reverse()
                    except (NetlinkError, OSError) as undo_error:
                        vlog.event(log, "ipvs.undo_failed", logging.ERROR, error=undo_error)
                raise BackendError(f"IPVS refused {op}: {exc}") from exc
            done.append(undo)

    def _do(self, op: Operation, table: Table) -> Callable[[], None]:
        """Carry out one operation; return what undoes it."""
        from pyroute2 import IPVSDest, IPVSService

        ipvs = self._ipvs

        def svc(service: VirtualService) -> Any:
            return IPVSService(**service_attrs(service))

        def dest(real: RealServer, family: int) -> Any:
            return IPVSDest(**real_attrs(real, family))

        match op:
            case AddService(service):
                ipvs.service("add", service=svc(service))
                return lambda: ipvs.service("del", service=svc(service))
            case EditService(service):
                old = table.service(service.key)
                ipvs.service("set", service=svc(service))
                assert old is not None
                return lambda: ipvs.service("set", service=svc(old))
            case DeleteService(key):
                old = table.service(key)
                assert old is not None
                ipvs.service("del", service=svc(old))

                def restore() -> None:
                    ipvs.service("add", service=svc(old))
                    for real in old.reals:
                        ipvs.dest("add", service=svc(old), dest=dest(real, key.family))
                return restore
            case AddReal(key, real):
                service = table.service(key)
                assert service is not None
                ipvs.dest("add", service=svc(service), dest=dest(real, key.family))
                return lambda: ipvs.dest("del", service=svc(service),
                                         dest=dest(real, key.family))
            case EditReal(key, real):
                service = table.service(key)
                assert service is not None
                before = service.real(real.key)
                ipvs.dest("set", service=svc(service), dest=dest(real, key.family))
                assert before is not None
                return lambda: ipvs.dest("set", service=svc(service),
                                         dest=dest(before, key.family))
            case DeleteReal(key, real_key):
                service = table.service(key)
                assert service is not None
                before = service.real(real_key)
                assert before is not None
                ipvs.dest("del", service=svc(service), dest=dest(before, key.family))
                return lambda: ipvs.dest("add", service=svc(service),
                                         dest=dest(before, key.family))
        raise BackendError(f"unknown operation {op!r}")  # pragma: no cover

    # -- the connection sync daemon, -Z, --timeout, --set ---------------------------------
    def _request(self, command: int, attrs: list[tuple[str, Any]], flags: int,
                        message: Any = None) -> Any:
        from pyroute2.netlink.exceptions import NetlinkError

        message = message if message is not None else _command_message()()
        message["cmd"] = command
        message["version"] = 1
        message["attrs"] = attrs
        core = self._ipvs.asyncore
        try:
            return list(self._ipvs._run_with_cleanup(core._do_request, message, flags))
        except NetlinkError as exc:
            raise BackendError(f"IPVS refused: {os.strerror(exc.code)}") from None

    def _zero(self, services: list[VirtualService] | None) -> None:
        from pyroute2 import IPVSService
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
        from pyroute2.netlink.generic.ipvs import ipvsmsg

        flags = NLM_F_REQUEST | NLM_F_ACK
        if services is None:
            self._request(IPVS_CMD_ZERO, [], flags)
            return
        for service in services:
            key = IPVSService(**service_attrs(service)).dump_key()
            self._request(IPVS_CMD_ZERO, [("IPVS_CMD_ATTR_SERVICE", key)], flags,
                                 message=ipvsmsg())

    async def zero(self, keys: Collection[ServiceKey] | None) -> None:
        """ipvsadm -Z: the kernel's counters and rate estimates of the services, or all."""
        services = None
        if keys is not None:
            services = [s for s in (self._table.service(k) for k in keys) if s is not None]
        await self._call(self._zero, services)

    def _read_timeouts(self) -> Timeouts:
        from pyroute2.netlink import NLM_F_REQUEST

        for answer in self._request(IPVS_CMD_GET_CONFIG, [], NLM_F_REQUEST):
            values = [answer.get_attr(f"IPVS_CMD_ATTR_TIMEOUT_{name}")
                      for name in ("TCP", "TCP_FIN", "UDP")]
            if all(v is not None for v in values):
                break
        else:
            raise BackendError("IPVS answered without its timeouts")
        return Timeouts(*(v if isinstance(v, int) else _u32_attribute(v) for v in values))

    async def timeouts(self) -> Timeouts:
        """ipvsadm -L --timeout: the kernel's idle timeouts of TCP, TCP after FIN, UDP."""
        return await self._call(self._read_timeouts)

    async def set_timeouts(self, wanted: Timeouts) -> Timeouts:
        """ipvsadm --set: 0 keeps a value (the kernel's rule); what holds afterwards."""
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

        attrs = [("IPVS_CMD_ATTR_TIMEOUT_TCP", wanted.tcp),
                 ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", wanted.tcpfin),
                 ("IPVS_CMD_ATTR_TIMEOUT_UDP", wanted.udp)]
        await self._call(self._request, IPVS_CMD_SET_CONFIG, attrs,
                         NLM_F_REQUEST | NLM_F_ACK)
        return await self.timeouts()

    def _list_daemons(self) -> list[SyncDaemon]:
        from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST

        daemons = []
        for answer in self._request(IPVS_CMD_GET_DAEMON, [], NLM_F_REQUEST | NLM_F_DUMP):
            raw = answer.get_attr("IPVS_CMD_ATTR_DAEMON")
            if raw is None:
                continue
            try:
                daemons.append(decode(_raw_attribute(raw)))
            except ValueError as exc:
                raise BackendError(f"IPVS answered with a damaged sync daemon: {exc}") from None
        return daemons

    async def sync_daemons(self) -> list[SyncDaemon]:
        return await self._call(self._list_daemons)

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

        attrs = [("IPVS_CMD_ATTR_DAEMON", {"attrs": daemon.attributes()})]
        await self._call(self._request, IPVS_CMD_NEW_DAEMON, attrs,
                         NLM_F_REQUEST | NLM_F_ACK)
        vlog.event(log, "ipvs.sync_daemon_started", daemon=daemon.describe())

    async def stop_sync_daemon(self, state: SyncState) -> None:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

        attrs = [("IPVS_CMD_ATTR_DAEMON",
                  {"attrs": [("IPVS_DAEMON_ATTR_STATE", state.kernel)]})]
        await self._call(self._request, IPVS_CMD_DEL_DAEMON, attrs,
                         NLM_F_REQUEST | NLM_F_ACK)
        vlog.event(log, "ipvs.sync_daemon_stopped", state=str(state))

    # -- counters and connections --------------------------------------------------------
    async def stats(self) -> dict[ServiceKey, ServiceStats]:
        return await self._call(self._read_stats)

    async def connections(self) -> list[Connection]:
        """The kernel's own connection table, as ipvsadm -L -c reads it."""
        return await asyncio.to_thread(_read_connections)

    def _read_stats(self) -> dict[ServiceKey, ServiceStats]:
        result: dict[ServiceKey, ServiceStats] = {}
        for attrs, _, dests in self._dump():
            key = service_from_attrs(attrs).key
            counters, rates = _stats(attrs)
            stats = ServiceStats(counters, rates)
            for dest, _ in dests:
                real = real_from_attrs(dest)
                d_counters, d_rates = _stats(dest)
                stats.reals[real.key] = RealStats(
                    dest.get("active_conns", 0), dest.get("inact_conns", 0),
                    d_counters, d_rates)
            result[key] = stats
        return result
