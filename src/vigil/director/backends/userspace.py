"""The userspace data path: an asyncio TCP and UDP proxy that follows the table.

For hosts where the kernel path is missing or the user is not root. Each
virtual service is a listener on VIP:port (IP_FREEBIND: it may start before
the VIP arrives); each new connection asks the service's scheduler for a real
server and is spliced to it with protocol-level forwarding and flow control.
Weight 0 or removal changes only where new connections go: open connections
run to their end. If the chosen server refuses the connection, the next one
is tried (a down server the checks have not caught yet costs no client).

Persistence (`-p`, `-M`) keeps a client network on its real server while it
has connections and for the timeout after. Counters and 2-second rate
estimates are kept as IPVS does. fwmark services need the kernel.

Worker processes (`proxy_workers`, none by default: VIGIL_PROXY_WORKERS) serve
the TCP services without persistence too, on listeners joined by SO_REUSEPORT; this
process hands them every table change and sums their counters.

Clients are strangers: the proxy holds at most as many descriptors as the
process may open minus a reserve for the health checks, the control socket
and the logs (a flood of connections must not blind the checks); TCP
connections idle for IPVS's established timeout, half-closed ones idle for its
tcpfin timeout and UDP flows idle for its udp timeout are closed (`vigil lvs
--set` changes the three); a datagram from a new source (spoofable) opens a
session only while descriptors and pending opens allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
import socket
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from vigil.director.backends.base import (
    Backend,
    BackendError,
    Connection,
    Counters,
    Rates,
    RealStats,
    ServiceStats,
    Timeouts,
    clear,
    planned_table,
)
from vigil.director.backends.proxy_workers import (
    RESPAWN_DELAY,
    Worker,
    WorkerError,
    add_stats,
    connection_from_json,
    default_workers,
    keys_to_json,
    shared,
    stats_from_json,
    tables_to_json,
    without_activity,
)
from vigil.lvs.operations import (
    AddService,
    DeleteService,
    Operation,
)
from vigil.lvs.schedulers import (
    SCHEDULERS,
    Dest,
    Flow,
    Load,
    Scheduler,
    make_scheduler,
)
from vigil.lvs.table import Protocol, RealKey, ServiceKey, Table, VirtualService
from vigil.tasks import cancel_and_wait

log = logging.getLogger("vigil.director.userspace")

IP_FREEBIND = 15
#: How long a connection to a real server may take before the next one is tried.
CONNECT_TIMEOUT = 3.0
#: At most this many real servers are tried for one client connection.
CONNECT_ATTEMPTS = 3
#: Idle UDP sessions end after this long (IPVS's udp timeout).
UDP_IDLE = 300.0
#: Rate estimation period (IPVS: 2 s).
ESTIMATE_EVERY = 2.0
#: Idle TCP connections end after this long (IPVS's tcp established timeout).
TCP_IDLE = 900.0
#: Idle half-closed TCP connections end after this long (IPVS's tcpfin timeout).
TCP_FIN_IDLE = 120.0
#: Descriptors kept free for checks, the control socket, logs and netlink.
FD_RESERVE = 256
#: UDP sessions being opened at once (each new source address opens one).
MAX_PENDING_OPENS = 256
#: Datagrams kept for a session still being opened.
MAX_EARLY_DATAGRAMS = 8
#: The flow a scheduler that does not look at addresses is given.
ANY_FLOW = Flow("", 0, "", 0)
#: A refused connection or datagram is logged at most this often.
LIMIT_LOG_EVERY = 10.0


@dataclass(frozen=True)
class ProxyLimits:
    """What strangers may make the proxy hold."""

    #: descriptors for clients: a TCP connection takes 2 (client, real server), a UDP flow 1
    max_descriptors: int
    tcp_idle: float = TCP_IDLE
    udp_idle: float = UDP_IDLE
    #: a connection one side has closed (a FIN seen)
    tcp_fin_idle: float = TCP_FIN_IDLE
    #: how often idle connections and flows (and slow connects) are looked for
    sweep_every: float = 1.0
    #: a connect to a real server slower than this (found by the sweep) tries the next
    connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    def from_system(cls, reserve: int = FD_RESERVE) -> ProxyLimits:
        """The descriptor limit raised to its hard ceiling (as HAProxy does), less `reserve`."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < wanted:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
                soft = wanted
        return cls(max_descriptors=descriptor_budget(soft, reserve))


def descriptor_budget(limit: int, reserve: int = FD_RESERVE) -> int:
    """Descriptors the proxy may spend on clients when the process may open `limit`."""
    if limit == resource.RLIM_INFINITY:
        limit = 1 << 20
    return max(0, limit - max(reserve, limit // 8))


@dataclass
class RealRuntime:
    load: Load = field(default_factory=Load)
    counters: Counters = field(default_factory=Counters)
    rates: Rates = field(default_factory=Rates)
    last: Counters = field(default_factory=Counters)


class ServiceRuntime:
    """One virtual service's listener, scheduler, loads and counters."""

    def __init__(self, service: VirtualService):
        self.service = service
        self.scheduler: Scheduler = make_scheduler(service.scheduler, service.sched_flags)
        self.reals: dict[RealKey, RealRuntime] = {}
        self.loads: dict[RealKey, Load] = {}
        self.counters = Counters()
        self.rates = Rates()
        self.last = Counters()
        self.persist: dict[bytes, tuple[RealKey, float]] = {}
        self.server: asyncio.AbstractServer | None = None
        self.udp: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None
        self.update(service)

    def update(self, service: VirtualService) -> None:
        if (service.scheduler, service.sched_flags) != (self.service.scheduler,
                                                         self.service.sched_flags):
            self.scheduler = make_scheduler(service.scheduler, service.sched_flags)
        self.service = service
        for real in service.reals:
            runtime = self.reals.setdefault(real.key, RealRuntime())
            self.loads[real.key] = runtime.load
        self.scheduler.update([Dest.of(r) for r in service.reals])

    def persistence_key(self, client: str) -> bytes | None:
        if self.service.persistent is None:
            return None
        address = ipaddress.ip_address(client)
        if self.service.netmask:
            mask = self.service.netmask
            prefix = (int(mask) if mask.isdigit()
                      else ipaddress.ip_network(f"0.0.0.0/{mask}").prefixlen)
            network = ipaddress.ip_network(f"{client}/{prefix}", strict=False)
            return network.network_address.packed
        return address.packed

    def pick(self, flow: Flow, exclude: set[RealKey]) -> RealKey | None:
        now = time.monotonic()
        key = self.persistence_key(flow.src)
        if key is not None:
            held = self.persist.get(key)
            if held is not None and held[1] > now and held[0] not in exclude:
                real = self.service.real(held[0])
                if real is not None and real.weight > 0:
                    self.persist[key] = (held[0], now + (self.service.persistent or 0))
                    return held[0]
        if exclude:
            loads = dict(self.loads)
            for bad in exclude:  # make the failed ones look full
                loads[bad] = Load(active=1 << 30)
            dests = [Dest.of(r) for r in self.service.reals if r.key not in exclude]
            if not dests:
                return None
            chosen = self._pick_among(flow, dests, loads)
        else:
            chosen = self.scheduler.pick(flow, self.loads)
        if chosen is not None and key is not None:
            self.persist[key] = (chosen, now + (self.service.persistent or 0))
        return chosen

    def _pick_among(self, flow: Flow, dests: list[Dest], loads) -> RealKey | None:
        if self.scheduler.hashing or len(dests) == 0:
            # A hash scheduler would pick the same failed server: take the next usable one.
            usable = [d for d in dests if d.weight > 0]
            if not usable:
                return None
            return usable[hash((flow.src, flow.sport)) % len(usable)].key
        return self.scheduler.pick(flow, loads)

    def sweep(self, now: float) -> None:
        for key, (_, expires) in list(self.persist.items()):
            if expires <= now:
                del self.persist[key]

    def estimate(self, seconds: float) -> None:
        def rate(now: Counters, last: Counters, out: Rates) -> None:
            out.cps = (now.conns - last.conns) / seconds
            out.in_pps = (now.in_packets - last.in_packets) / seconds
            out.out_pps = (now.out_packets - last.out_packets) / seconds
            out.in_bps = (now.in_bytes - last.in_bytes) / seconds
            out.out_bps = (now.out_bytes - last.out_bytes) / seconds
            last.__dict__.update(now.__dict__)

        rate(self.counters, self.last, self.rates)
        for runtime in self.reals.values():
            rate(runtime.counters, runtime.last, runtime.rates)


class _Upstream(asyncio.Protocol):
    """The director's connection to a real server.

    Established connections do no Python work per chunk beyond the write and
    two additions to the connection's own counters: the service's and real
    server's counters and the idle clock follow in `_Client.flush`, which the
    sweeper, the rate estimator and every reader of the counters call."""

    __slots__ = ("client", "transport")

    def __init__(self, client: _Client):
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.out_packets += 1
        client.out_bytes += len(data)
        if client.transport is not None:
            client.transport.write(data)

    def eof_received(self) -> bool:
        client = self.client
        client.upstream_eof = True
        if client.eof:  # both directions are done
            client.close()
            return False
        if client.transport is not None and client.transport.can_write_eof():
            client.transport.write_eof()
        return True

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.client.close()

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.resume_reading()


class _Client(asyncio.Protocol):
    """A client's connection to the virtual service."""

    __slots__ = ("addresses", "backend", "closed", "connect_expired", "connect_started",
                 "connecting", "counters", "eof", "holds", "in_bytes",
                 "in_packets", "last_active", "out_bytes", "out_packets",
                 "pending", "real", "real_key", "runtime", "transport", "up",
                 "upstream", "upstream_eof")

    def __init__(self, backend: UserspaceBackend, runtime: ServiceRuntime):
        self.backend = backend
        self.runtime = runtime
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        #: the real server's transport once connected (the hot path reads only this)
        self.up: asyncio.Transport | None = None
        self.real: RealRuntime | None = None
        self.real_key: RealKey | None = None
        #: (client, virtual service) addresses, asked of the kernel only when needed
        self.addresses: tuple[tuple[str, int], tuple[str, int]] | None = None
        self.pending: list[bytes] = []
        self.eof = False
        self.upstream_eof = False
        self.closed = False
        self.counters: tuple[Counters, ...] = ()
        #: not yet added to `counters` (see `flush`)
        self.in_packets = self.in_bytes = self.out_packets = self.out_bytes = 0
        self.last_active = time.monotonic()
        self.holds = 0  # descriptors counted against the proxy's limit
        #: the task connecting to a real server, since when, and whether the sweep ended it
        self.connecting: asyncio.Task[None] | None = None
        self.connect_started = 0.0
        self.connect_expired = False

    def flush(self, now: float) -> None:
        """Add what passed since the last flush to the counters; activity restarts the
        idle clock (so idle times are exact to the sweep period)."""
        if not (self.in_packets or self.out_packets):
            return
        self.last_active = now
        if not self.counters:
            return  # no real server yet: counted once one is chosen
        for counters in self.counters:
            counters.in_packets += self.in_packets
            counters.in_bytes += self.in_bytes
            counters.out_packets += self.out_packets
            counters.out_bytes += self.out_bytes
        self.in_packets = self.in_bytes = self.out_packets = self.out_bytes = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        if not self.backend.take(2, "connection"):
            self.closed = True
            transport.abort()
            return
        self.holds = 2
        self.backend.clients.add(self)
        transport.pause_reading()
        runtime = self.runtime
        if runtime.scheduler.hashing or runtime.service.persistent is not None:
            (src, sport), (dst, dport) = self.ends()
            flow = Flow(src, sport, dst, dport)
        else:  # rr, wrr, lc, ...: the addresses play no part (not even asked for)
            flow = ANY_FLOW
        self.connecting = self.backend.loop.create_task(self._connect(flow))

    def ends(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """The client's address and the virtual service's, as the kernel says."""
        if self.addresses is None:
            peer = local = ("", 0)
            if self.transport is not None:
                peer = self.transport.get_extra_info("peername") or peer
                local = self.transport.get_extra_info("sockname") or local
            self.addresses = (peer[0], peer[1]), (local[0], local[1])
        return self.addresses

    async def _connect(self, flow: Flow) -> None:
        runtime = self.runtime
        tried: set[RealKey] = set()
        loop = self.backend.loop
        connecting = self.backend.connecting
        for _ in range(CONNECT_ATTEMPTS):
            key = runtime.pick(flow, tried)
            if key is None:
                break
            real = runtime.service.real(key)
            if real is None:
                break
            tried.add(key)
            port = real.port or runtime.service.key.port
            # No timer per connect (asyncio.timeout costs ~50 us a connection): the
            # sweep cancels a connect older than limits.connect_timeout.
            self.connect_started = time.monotonic()
            connecting.add(self)
            try:
                transport, upstream = await loop.create_connection(
                    lambda: _Upstream(self), real.address, port)
            except OSError as exc:
                log.debug("proxy.connect_failed real=%s error=%s", key, exc)
                continue
            except asyncio.CancelledError:
                if not self.connect_expired:
                    raise
                self.connect_expired = False
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                log.debug("proxy.connect_failed real=%s error=timed out", key)
                continue
            finally:
                connecting.discard(self)
            if self.closed:
                transport.close()
                return
            # (asyncio and uvloop both set TCP_NODELAY on TCP transports)
            self.upstream = upstream
            self.real_key = RealKey(real.address, port)
            self.real = runtime.reals.get(key) or runtime.reals.setdefault(key, RealRuntime())
            self.real.load.active += 1
            self.counters = (self.real.counters, runtime.counters)
            for counters in self.counters:
                counters.conns += 1
            for chunk in self.pending:
                transport.write(chunk)
            self.pending.clear()
            self.up = transport
            if self.eof and transport.can_write_eof():
                transport.write_eof()
            if self.transport is not None:
                self.transport.resume_reading()
            return
        self.abort()

    def data_received(self, data: bytes) -> None:
        self.in_packets += 1
        self.in_bytes += len(data)
        up = self.up
        if up is not None:
            up.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.upstream_eof:  # both directions are done
            self.close()
            return False
        up = self.up
        if up is not None and up.can_write_eof():
            up.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.up is not None:
            self.up.pause_reading()

    def resume_writing(self) -> None:
        if self.up is not None:
            self.up.resume_reading()

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.close()

    @property
    def half_closed(self) -> bool:
        """One side has sent its FIN: IPVS's FIN_WAIT, with its own timeout."""
        return self.eof or self.upstream_eof

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.flush(time.monotonic())
        if self.transport is not None:
            self.transport.close()
        if self.up is not None:
            self.up.close()
            self.up = None
        if self.real is not None:
            self.real.load.active -= 1
        self.backend.give(self.holds)
        self.holds = 0
        self.backend.clients.discard(self)


class _UdpService(asyncio.DatagramProtocol):
    """A UDP virtual service: one session (socket to a real server) per client."""

    def __init__(self, backend: UserspaceBackend, runtime: ServiceRuntime):
        self.backend = backend
        self.runtime = runtime
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple, _UdpSession] = {}
        #: sources whose session is being opened -> datagrams that came meanwhile
        self.opening: dict[tuple, list[bytes]] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        session = self.sessions.get(addr)
        if session is not None and not self.runtime.service.ops:
            session.send(data)
            return
        early = self.opening.get(addr)
        if early is not None:
            if len(early) < MAX_EARLY_DATAGRAMS:
                early.append(data)
            return
        if len(self.opening) >= MAX_PENDING_OPENS or not self.backend.take(1, "udp flow"):
            return
        self.opening[addr] = [data]
        self.backend.loop.create_task(self._open(addr))

    async def _open(self, addr) -> None:
        session = None
        try:
            local = self.transport.get_extra_info("sockname") if self.transport else ("", 0)
            key = self.runtime.pick(Flow(addr[0], addr[1], local[0], local[1]), set())
            real = self.runtime.service.real(key) if key is not None else None
            if real is None or key is None:
                return
            port = real.port or self.runtime.service.key.port
            _, session = await self.backend.loop.create_datagram_endpoint(
                lambda: _UdpSession(self, addr, key), remote_addr=(real.address, port))
        except OSError as exc:
            log.debug("proxy.udp_open_failed client=%s error=%s", addr, exc)
        finally:
            early = self.opening.pop(addr, [])
            if session is None:
                self.backend.give(1)
        if session is None:
            return
        old = self.sessions.get(addr)
        if old is not None:
            old.close()
        self.sessions[addr] = session
        for data in early:
            session.send(data)

    def sweep(self, now: float, idle: float) -> None:
        for addr, session in list(self.sessions.items()):
            if now - session.used > idle:
                session.close()
                self.sessions.pop(addr, None)


class _UdpSession(asyncio.DatagramProtocol):
    def __init__(self, service: _UdpService, client, key: RealKey):
        self.service = service
        self.client = client
        self.key = key
        self.runtime = service.runtime
        self.real = self.runtime.reals.setdefault(key, RealRuntime())
        self.transport: asyncio.DatagramTransport | None = None
        self.used = time.monotonic()
        self.real.load.active += 1
        self.real.counters.conns += 1
        self.runtime.counters.conns += 1

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, data: bytes) -> None:
        self.used = time.monotonic()
        for counters in (self.real.counters, self.runtime.counters):
            counters.in_packets += 1
            counters.in_bytes += len(data)
        if self.transport is not None:
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr) -> None:
        self.used = time.monotonic()
        for counters in (self.real.counters, self.runtime.counters):
            counters.out_packets += 1
            counters.out_bytes += len(data)
        if self.service.transport is not None:
            self.service.transport.sendto(data, self.client)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self.real.load.active -= 1
            self.service.backend.give(1)


class UserspaceBackend(Backend):
    name = "userspace"

    def __init__(self, limits: ProxyLimits | None = None, workers: int | None = None,
                 reuse_port: bool = False) -> None:
        """`workers`: processes serving the shared services, this one included
        (default: `default_workers()`); `reuse_port`: this process is a worker."""
        self.table = Table()
        self.processes = workers if workers is not None else default_workers()
        self.reuse_port = reuse_port or self.processes > 1
        self.workers: list[Worker] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._closing = False
        #: how many workers died (each was replaced)
        self.worker_deaths = 0
        #: the counters of workers that died, as last read
        self.retired: dict[ServiceKey, ServiceStats] = {}
        self.runtimes: dict[ServiceKey, ServiceRuntime] = {}
        self._udp: dict[ServiceKey, _UdpService] = {}
        self._maintenance: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self.limits = limits
        #: descriptors held for clients, against `limits.max_descriptors`
        self.descriptors = 0
        self.clients: set[_Client] = set()
        #: clients waiting for a real server to accept
        self.connecting: set[_Client] = set()
        #: what was refused for want of descriptors, by kind
        self.refused: dict[str, int] = {}
        self._limit_logged = -LIMIT_LOG_EVERY

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def start(self) -> None:
        if self.limits is None:
            self.limits = ProxyLimits.from_system()
        loop = asyncio.get_running_loop()
        self._maintenance = loop.create_task(self._keep())
        self._expiry = loop.create_task(self._expire())
        try:
            for index in range(1, self.processes):
                worker = Worker(index)
                self.workers.append(worker)
                await worker.spawn()
                await self._prime(worker)
                log.info("proxy.worker_started worker=%d pid=%s", index, worker.pid)
        except (OSError, WorkerError) as exc:
            await self.close()
            raise BackendError(f"cannot start the proxy's worker processes: {exc}") from exc
        self._watchers = [loop.create_task(self._watch(w)) for w in self.workers]

    # -- worker processes ------------------------------------------------------------------
    async def _prime(self, worker: Worker) -> None:
        """Bring a new worker to this process's timeouts and table."""
        assert self.limits is not None
        timeouts = await self.timeouts()
        await worker.ask({"op": "timeouts",
                          "timeouts": [timeouts.tcp, timeouts.tcpfin, timeouts.udp]})
        await worker.ask({"op": "table", "table": tables_to_json(self.table)})
        worker.ready = True

    async def _watch(self, worker: Worker) -> None:
        """Notice a worker's exit at once, keep its counters, start another."""
        while not self._closing:
            process = worker.process
            if process is not None:
                status = await process.wait()
                if self._closing:
                    return
                self.worker_deaths += 1
                log.error("proxy.worker_died worker=%d pid=%d status=%d (replacing it)",
                          worker.index, process.pid, status)
                died = without_activity(worker.last_stats)
                add_stats(self.retired, died, died.keys())
                # counted once: from now on in `retired`, not again as this worker's
                worker.last_stats = {}
                worker.hang_up()
                worker.process = None
            await asyncio.sleep(RESPAWN_DELAY)
            try:
                await worker.spawn()
                await self._prime(worker)
                log.info("proxy.worker_started worker=%d pid=%s", worker.index, worker.pid)
            except (OSError, WorkerError) as exc:
                log.error("proxy.worker_start_failed worker=%d error=%s", worker.index, exc)
                self._replace(worker)

    def _replace(self, worker: Worker) -> None:
        """A worker that cannot follow the table: kill it (its watcher starts another)."""
        if worker.process is not None and worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()

    async def _ask_workers(self, request: dict) -> list:
        """Every live worker's answer (None for one that could not answer: it is replaced)."""
        answers = await asyncio.gather(*(w.ask(request) for w in self.workers),
                                       return_exceptions=True)
        out = []
        for worker, answer in zip(self.workers, answers, strict=True):
            if isinstance(answer, WorkerError):
                if not self._closing and worker.process is not None:
                    log.error("proxy.worker_failed worker=%d request=%s error=%s",
                              worker.index, request.get("op"), answer)
                    self._replace(worker)
                out.append(None)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                out.append(answer)
        return out

    # -- the descriptor budget -------------------------------------------------------------
    def take(self, count: int, kind: str) -> bool:
        """Count `count` descriptors for a new client; False (and logged) when over budget."""
        budget = self.limits.max_descriptors if self.limits is not None else 0
        if self.descriptors + count <= budget:
            self.descriptors += count
            return True
        self.refused[kind] = self.refused.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._limit_logged >= LIMIT_LOG_EVERY:
            self._limit_logged = now
            log.warning("proxy.limit kind=%s descriptors=%d budget=%d refused=%d",
                        kind, self.descriptors, budget, self.refused[kind])
        return False

    def give(self, count: int) -> None:
        self.descriptors = max(0, self.descriptors - count)

    def flush(self) -> float:
        """Bring every connection's counts into the counters; the time it did that."""
        now = time.monotonic()
        for client in self.clients:
            client.flush(now)
        return now

    async def _expire(self) -> None:
        """Idle TCP connections and UDP flows end (IPVS's timeouts)."""
        assert self.limits is not None
        while True:
            await asyncio.sleep(self.limits.sweep_every)
            limits = self.limits  # --set may have changed them
            now = self.flush()
            for client in [c for c in self.clients
                           if now - c.last_active > self._idle_limit(c)]:
                client.abort()
            for client in [c for c in self.connecting
                           if now - c.connect_started > limits.connect_timeout]:
                if client.connecting is not None:
                    client.connect_expired = True
                    client.connecting.cancel()
            for udp in self._udp.values():
                udp.sweep(now, limits.udp_idle)

    def _idle_limit(self, client: _Client) -> float:
        assert self.limits is not None
        return self.limits.tcp_fin_idle if client.half_closed else self.limits.tcp_idle

    # -- ipvsadm -Z, -L -c, --set ----------------------------------------------------------
    async def zero(self, keys: Collection[ServiceKey] | None) -> None:
        self.flush()
        await self._ask_workers({"op": "zero", "keys": keys_to_json(keys)})
        for key in list(self.retired):
            if keys is None or key in keys:
                del self.retired[key]
        for key, runtime in self.runtimes.items():
            if keys is not None and key not in keys:
                continue
            for numbers in (runtime.counters, runtime.last, runtime.rates):
                clear(numbers)
            for real in runtime.reals.values():
                for numbers in (real.counters, real.last, real.rates):
                    clear(numbers)

    async def connections(self) -> list[Connection]:
        now = self.flush()
        found = []
        for client in self.clients:
            if client.real_key is None or client.closed:
                continue  # no real server chosen yet
            found.append(Connection(
                "TCP", max(0.0, self._idle_limit(client) - (now - client.last_active)),
                "FIN_WAIT" if client.half_closed else "ESTABLISHED", *client.ends(),
                (client.real_key.address, client.real_key.port)))
        assert self.limits is not None
        for key, udp in self._udp.items():
            for source, session in udp.sessions.items():
                real = udp.runtime.service.real(session.key)
                port = (real.port if real else 0) or key.port
                found.append(Connection(
                    "UDP", max(0.0, self.limits.udp_idle - (now - session.used)), "UDP",
                    (source[0], source[1]), (key.address, key.port),
                    (session.key.address, port)))
        for answer in await self._ask_workers({"op": "connections"}):
            found.extend(connection_from_json(c) for c in answer or ())
        return found

    async def timeouts(self) -> Timeouts:
        assert self.limits is not None
        limits = self.limits
        return Timeouts(round(limits.tcp_idle), round(limits.tcp_fin_idle),
                        round(limits.udp_idle))

    async def set_timeouts(self, wanted: Timeouts) -> Timeouts:
        assert self.limits is not None
        limits = self.limits
        self.limits = replace(
            limits, tcp_idle=wanted.tcp or limits.tcp_idle,
            tcp_fin_idle=wanted.tcpfin or limits.tcp_fin_idle,
            udp_idle=wanted.udp or limits.udp_idle)
        now = await self.timeouts()
        await self._ask_workers({"op": "timeouts", "timeouts": [now.tcp, now.tcpfin, now.udp]})
        return now

    async def read(self) -> Table:
        return self.table

    async def apply(self, operations: Sequence[Operation], desired: Table) -> None:
        result = planned_table(self.table, operations, desired, exact=False)
        added = [op.service for op in operations if isinstance(op, AddService)]
        for service in added:
            if service.key.protocol is Protocol.FWM:
                raise BackendError(
                    f"{service.key}: fwmark services need a kernel backend (nftables or ipvs)")
        for service in result:
            if service.scheduler not in SCHEDULERS:
                raise BackendError(
                    f"{service.key}: scheduler {service.scheduler} needs the ipvs backend "
                    f"(the userspace proxy knows {', '.join(sorted(SCHEDULERS))})")
        opened: dict[ServiceKey, socket.socket] = {}
        try:
            for service in added:
                opened[service.key] = self._bind(service.key, self.reuse_port and shared(service))
        except OSError as exc:
            for sock in opened.values():
                sock.close()
            raise BackendError(f"cannot listen on {service.key}: {exc.strerror}") from exc
        # Everything that can fail has been tried: commit.
        for op in operations:
            if isinstance(op, DeleteService):
                self._close_service(op.key)
        for service in added:
            runtime = ServiceRuntime(result.service(service.key) or service)
            self.runtimes[service.key] = runtime
            await self._serve(runtime, opened[service.key])
        for service in result:
            runtime = self.runtimes.get(service.key)
            if runtime is not None and runtime.service != service:
                runtime.update(service)
        self.table = result
        # Every worker follows before apply returns (one that cannot is replaced).
        await self._ask_workers({"op": "table", "table": tables_to_json(result)})

    def _bind(self, key: ServiceKey, reuse_port: bool = False) -> socket.socket:
        family = socket.AF_INET6 if key.family == 6 else socket.AF_INET
        kind = socket.SOCK_DGRAM if key.protocol is Protocol.UDP else socket.SOCK_STREAM
        sock = socket.socket(family, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:  # the worker processes' listeners join this one
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP if family == socket.AF_INET
                                else socket.IPPROTO_IPV6, IP_FREEBIND, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((key.address, key.port))
            if kind == socket.SOCK_STREAM:
                sock.listen(4096)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _serve(self, runtime: ServiceRuntime, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        runtime.sock = sock
        if runtime.service.key.protocol is Protocol.UDP:
            udp = _UdpService(self, runtime)
            transport, _ = await loop.create_datagram_endpoint(lambda: udp, sock=sock)
            runtime.udp = transport
            self._udp[runtime.service.key] = udp
        else:
            runtime.server = await loop.create_server(
                lambda: _Client(self, runtime), sock=sock, backlog=4096)

    def _close_service(self, key: ServiceKey) -> None:
        runtime = self.runtimes.pop(key, None)
        if runtime is None:
            return
        if runtime.server is not None:
            runtime.server.close()
        if runtime.udp is not None:
            runtime.udp.close()
        udp = self._udp.pop(key, None)
        if udp is not None:
            for session in udp.sessions.values():
                session.close()

    async def _keep(self) -> None:
        """Rate estimates and expiry of persistence entries."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(ESTIMATE_EVERY)
            now = self.flush()
            for runtime in self.runtimes.values():
                runtime.estimate(now - last)
                runtime.sweep(now)
            last = now

    async def stats(self) -> dict[ServiceKey, ServiceStats]:
        self.flush()
        result: dict[ServiceKey, ServiceStats] = {}
        for key, runtime in self.runtimes.items():
            service_stats = ServiceStats(Counters(**runtime.counters.__dict__),
                                         Rates(**runtime.rates.__dict__))
            for real in runtime.service.reals:
                rt = runtime.reals.get(real.key, RealRuntime())
                service_stats.reals[real.key] = RealStats(
                    active=rt.load.active, inactive=rt.load.inactive,
                    counters=Counters(**rt.counters.__dict__), rates=Rates(**rt.rates.__dict__))
            result[key] = service_stats
        for worker, answer in zip(self.workers,
                                  await self._ask_workers({"op": "stats"}), strict=True):
            if answer is not None:
                worker.last_stats = stats_from_json(answer)
            add_stats(result, worker.last_stats, result.keys())
        add_stats(result, self.retired, result.keys())
        return result

    async def close(self) -> None:
        self._closing = True
        await cancel_and_wait(self._watchers)
        await asyncio.gather(*(w.stop() for w in self.workers))
        await cancel_and_wait([self._maintenance, self._expiry])
        for key in list(self.runtimes):
            self._close_service(key)
