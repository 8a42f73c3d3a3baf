"""The nftables backend: LVS direct routing and NAT in the kernel, without IPVS.

The thin shell around `vigil.dataplane`: it reads the host (interfaces,
routes to the real servers), asks `build_plan` for the next plan, renders it,
and commits the difference as one nftables JSON transaction (libnftables when
it loads, else `nft -j -f -`). Nothing is sent when nothing changes. A
maintenance task rebuilds the plan when the host changes (an interface comes
or goes, a real server's route moves), when a slot transition window ends,
when retired servers have no connection left, and when a fresh director's
learning period ends; it also samples the counters for `--rate`.

It never binds a socket: the VIP's port stays free for a local service (the
seed's `httpd` next to `ldirectord`), and a fallback server on the director
itself is reached by local delivery, as IPVS does.

One director instance per host drives the `vigil` tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vigil import log as vlog
from vigil.dataplane.adopt import AdoptError, adopt
from vigil.dataplane.commands import Command, replace_all, transaction
from vigil.dataplane.plan import (
    UNROUTED,
    Environment,
    Plan,
    PlanError,
    Record,
    Route,
    build_plan,
)
from vigil.dataplane.ruleset import (
    INET,
    NETDEV,
    TABLE,
    Ruleset,
    fin_counter,
    flow_set,
    in_counter,
    nat_counter,
    render,
    syn_counter,
)
from vigil.director.backends.base import (
    Backend,
    BackendError,
    Connection,
    Counters,
    Rates,
    RealStats,
    ServiceStats,
    planned_table,
)
from vigil.errors import VigilError
from vigil.lvs.operations import Operation
from vigil.lvs.table import Forward, ServiceKey, Table
from vigil.tasks import cancel_and_wait

log = logging.getLogger("vigil.director.nftables")

#: How often the host is looked at (interfaces, routes, windows, learning).
MAINTAIN_EVERY = 1.0
#: Counter sampling period for `--rate` (IPVS estimates over 2 s as well).
ESTIMATE_EVERY = 2.0
#: Retired servers' record sets are looked at this often.
DRAIN_EVERY = 30.0
#: A learning director settles this long after its table last changed, once the
#: director said its first round of checks is done ...
LEARN_QUIET = 1.0
#: ... or this long after the last change when nobody says so.
LEARN_TIMEOUT = 5.0
ARPHRD_ETHER = 1
RTN_LOCAL = 2
ESTABLISHED = 3  # conntrack's TCP state (IPVS counts these as ActiveConn)
#: conntrack's TCP states by number, in IPVS's words where IPVS has the state
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
              "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT")


def read_environment(addresses: Sequence[str]) -> Environment:
    """Ethernet interfaces and the route to each address, from the kernel (netlink)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        names = {}
        devices = []
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            names[link["index"]] = name
            if link["ifi_type"] == ARPHRD_ETHER:
                devices.append(name)
        routes: dict[str, Route] = {}
        for address in addresses:
            try:
                found = ipr.route("get", dst=address)
            except NetlinkError:
                routes[address] = UNROUTED
                continue
            if not found:
                routes[address] = UNROUTED
                continue
            route = found[0]
            routes[address] = Route(
                device=names.get(route.get_attr("RTA_OIF")),
                local=route["type"] == RTN_LOCAL,
                gateway=route.get_attr("RTA_GATEWAY") is not None)
    return Environment.of(devices, routes)


def forget_neighbours(addresses: Sequence[str]) -> None:
    """Drop the kernel's neighbour entries (ARP/ND) for these addresses.

    A real server that stops answering may have a new MAC address (a replaced
    card, a moved VM): its next health check then resolves it afresh instead of
    waiting for the stale entry to time out. Direct routing follows at once,
    since the data path asks the neighbour layer on every packet."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    wanted = set(addresses)
    with IPRoute() as ipr:
        for entry in ipr.get_neighbours():
            address = entry.get_attr("NDA_DST")
            if address in wanted:
                with contextlib.suppress(NetlinkError):
                    ipr.neigh("del", dst=address, ifindex=entry["ifindex"])


def _kernel_probe() -> str | None:
    """None when this kernel and userland take a vigil ruleset (dry run), else why not."""
    from vigil.kernel.libnftables import open_nftables

    try:
        runner = open_nftables()
    except VigilError as exc:
        return str(exc)
    try:
        runner.list_table(NETDEV, TABLE)
    except VigilError as exc:
        return f"nftables not usable: {exc}"
    finally:
        runner.close()
    return None


@dataclass
class _Sample:
    at: float
    counters: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (pkts, bytes)


class NftablesBackend(Backend):
    name = "nftables"

    @classmethod
    def available(cls) -> str | None:
        if os.geteuid() != 0:
            return "needs root (CAP_NET_ADMIN) to load nftables rules"
        return _kernel_probe()

    def __init__(self, runner: Any = None,
                 environment: Callable[[Sequence[str]], Environment] = read_environment,
                 clock: Callable[[], float] = time.monotonic,
                 forget: Callable[[Sequence[str]], None] = forget_neighbours):
        self._runner = runner
        self._environment_reader = environment
        self._forget = forget
        self._clock = clock
        self._plan: Plan | None = None
        self._ruleset: Ruleset | None = None
        self._rebuild = False  # the kernel holds something we cannot adopt
        self._table = Table()
        self._learning = True  # a fresh data path: hold back packets it cannot place
        self._holding = False  # an adopted data path: keep it until the director settles
        self._settled = False
        self._standby = False  # a warm standby: dispatch only what is addressed here
        self._changed_at = clock()
        self._drained: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._samples: list[_Sample] = []
        #: counter name -> (packets, bytes) at the last ipvsadm -Z: shown as zero
        self._zeroed: dict[str, tuple[int, int]] = {}
        self._env: Environment | None = None
        self.commits = 0  # transactions sent (tests and status read it)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._runner is None:
            from vigil.kernel.libnftables import open_nftables

            self._runner = open_nftables()
        netdev = await asyncio.to_thread(self._runner.list_table, NETDEV, TABLE)
        inet = await asyncio.to_thread(self._runner.list_table, INET, TABLE)
        try:
            plan = adopt(netdev, inet, self._clock())
        except (AdoptError, ValueError, KeyError, IndexError) as exc:
            vlog.event(log, "nftables.not_adopted", logging.WARNING, why=exc)
            plan = None
            self._rebuild = True
        if plan is not None:
            self._plan = plan
            self._ruleset = render(plan)
            self._table = plan.table()
            self._learning = plan.learning
            self._holding = not plan.learning
            self._standby = plan.standby
            vlog.event(log, "nftables.adopted", services=len(plan.services),
                       learning=plan.learning, runner=self._runner.name)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._maintain()), loop.create_task(self._estimate())]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._runner is not None:
            self._runner.close()

    def takes_moved_flows(self) -> bool:
        return not self._learning

    def settled(self) -> None:
        """The director's first round of checks is done: its table means what it says."""
        self._settled = True

    async def set_active(self, active: bool) -> None:
        """Gate (standby) or open (active) the dispatch rules, in one small transaction.

        The gate is `fib daddr type local`: a standby forwards only packets for
        addresses it holds, as IPVS does, so the moment the VIP comes up here its
        packets take the slots this director has kept warm; activation then only
        drops the gate (the active director forwards whatever reaches it, as before).
        """
        async with self._lock:
            if self._standby == (not active):
                return
            self._standby = not active
            try:
                await self._regate(active)
            except BackendError:
                self._standby = active  # the kernel still holds the other role
                raise

    async def _regate(self, active: bool) -> None:
        if self._plan is None:
            return  # nothing in the kernel yet: the first commit renders the gate
        if self._holding:
            # adopted and not settled: of the running data path, only the gate changes
            plan = replace(self._plan, standby=self._standby)
            ruleset = render(plan)
            commands = transaction(self._ruleset, ruleset)
            if commands:
                await self._send(commands)
                self.commits += 1
            self._plan, self._ruleset = plan, ruleset
        else:
            await self._commit(self._table, "active" if active else "standby", self._env)

    # -- the table -----------------------------------------------------------------------
    async def read(self) -> Table:
        return self._table

    async def apply(self, operations: Sequence[Operation], desired: Table) -> None:
        planned_table(self._table, operations, desired)  # refused before anything is touched
        async with self._lock:
            self._changed_at = self._clock()
            if self._holding:
                # A director that restarted starts from "nothing checked yet": keep the
                # running data path until its checks agree (the difference goes then).
                self._table = desired
                return
            await self._commit(desired, "table")

    def _addresses(self, table: Table) -> list[str]:
        planned = self._plan.services if self._plan else ()
        return sorted({r.real.address for s in planned for r in s.reals}
                      | {r.address for s in table for r in s.reals})

    async def _commit(self, table: Table, why: str, env: Environment | None = None) -> bool:
        """Plan, render, diff and send; True when a transaction went to the kernel."""
        if env is None:
            env = await self._read_environment(table)
        now = self._clock()
        try:
            plan = build_plan(table, env, self._plan, now, self._learning,
                              drained=self._drained, standby=self._standby)
            ruleset = render(plan)
        except (PlanError, ValueError) as exc:
            raise BackendError(str(exc)) from exc
        commands = replace_all(ruleset) if self._rebuild else transaction(self._ruleset, ruleset)
        if commands:
            await self._send(commands)
            self.commits += 1
            vlog.event(log, "nftables.commit", why=why, commands=len(commands),
                       learning=plan.learning)
            self._warn_unreachable(plan)
        await self._renew_neighbours(self._plan, plan)
        self._plan, self._ruleset, self._table = plan, ruleset, table
        self._env = env
        self._rebuild = False
        return bool(commands)

    async def _read_environment(self, table: Table) -> Environment:
        try:
            return await asyncio.to_thread(self._environment_reader, self._addresses(table))
        except (OSError, ValueError) as exc:  # NetlinkError is an OSError
            raise BackendError(f"cannot read interfaces and routes: {exc}") from exc

    async def _send(self, commands: list[Command]) -> None:
        try:
            await asyncio.to_thread(self._runner.apply, commands)
        except VigilError as exc:
            # The kernel does not hold what we think (someone flushed the ruleset?):
            # the next attempt builds everything afresh, in one transaction again.
            self._rebuild = True
            raise BackendError(str(exc)) from exc

    async def _renew_neighbours(self, old: Plan | None, new: Plan) -> None:
        """Servers directly routed to that just lost their weight: resolve them afresh."""
        if old is None:
            return
        before = {(s.key, r.real.key): r for s in old.services for r in s.reals}
        lost = set()
        for service in new.services:
            for real in service.reals:
                was = before.get((service.key, real.real.key))
                if real.real.forward is Forward.GATE and not real.route.local \
                        and was is not None and was.usable and not real.usable:
                    lost.add(real.real.address)
        if lost:
            try:
                await asyncio.to_thread(self._forget, sorted(lost))
            except OSError as exc:
                vlog.event(log, "nftables.neighbour_flush_failed", logging.WARNING, error=exc)

    def _warn_unreachable(self, plan: Plan) -> None:
        for service in plan.services:
            for real in service.reals:
                if real.retired or real.reachable:
                    continue
                why = "no route" if real.route.device is None else "behind a gateway"
                vlog.event(log, "nftables.unreachable", logging.WARNING,
                           service=service.key.label, real=real.real.key, why=why)

    # -- maintenance ---------------------------------------------------------------------
    async def _maintain(self) -> None:
        last_drain = self._clock()
        while True:
            await asyncio.sleep(MAINTAIN_EVERY)
            try:
                async with self._lock:
                    why = self._due()
                    if self._clock() - last_drain >= DRAIN_EVERY:
                        last_drain = self._clock()
                        if await self._check_drained():
                            why = why or "drained"
                    env = await self._read_environment(self._table)
                    if why is None and (env == self._env or not len(self._table)
                                        or self._holding):
                        continue
                    if why == "settled":
                        phase = "learning" if self._learning else "holding"
                        self._learning = self._holding = False
                    # Host changes (interfaces, routes) show up as a different rendering.
                    changed = await self._commit(self._table, why or "host", env)
                    if why == "settled":
                        vlog.event(log, "nftables.settled", was=phase, changed=changed,
                                   services=len(self._table))
            except BackendError as exc:
                vlog.event(log, "nftables.maintain_failed", logging.ERROR, error=exc)
            except Exception as exc:  # the loop must outlive one bad round
                vlog.event(log, "nftables.maintain_crashed", logging.ERROR,
                           error=f"{type(exc).__name__}: {exc}")

    def _due(self) -> str | None:
        now = self._clock()
        if self._holding or (self._learning and len(self._table)):
            quiet = now - self._changed_at
            if (self._settled and quiet >= LEARN_QUIET) or quiet >= LEARN_TIMEOUT:
                return "settled"
        deadline = self._plan.next_deadline() if self._plan else None
        if deadline is not None and deadline <= now:
            return "window"
        return None

    async def _check_drained(self) -> bool:
        """Note retired servers whose record sets are empty (they may go)."""
        if self._plan is None:
            return False
        retired = [(s, r) for s in self._plan.services for r in s.reals
                   if r.retired and s.record is not Record.NEVER]
        if not retired:
            return False
        listing = await asyncio.to_thread(self._runner.list_table, NETDEV, TABLE)
        sizes = {o["set"]["name"]: len(o["set"].get("elem", []))
                 for o in listing if "set" in o}
        found = False
        for service, real in retired:
            if sizes.get(flow_set(service, real.token), 0) == 0:
                pair = (service.token, real.token)
                if pair not in self._drained:
                    self._drained.add(pair)
                    found = True
        return found

    # -- counters ------------------------------------------------------------------------
    async def _sample(self) -> _Sample:
        sample = _Sample(self._clock())
        for family in (NETDEV, INET):
            listing = await asyncio.to_thread(self._runner.list_counters, family, TABLE)
            for obj in listing:
                c = obj.get("counter")
                if c:
                    sample.counters[c["name"]] = (c.get("packets", 0), c.get("bytes", 0))
        return sample

    async def _estimate(self) -> None:
        while True:
            await asyncio.sleep(ESTIMATE_EVERY)
            if not len(self._table):
                continue
            try:
                sample = await self._sample()
            except VigilError as exc:
                vlog.event(log, "nftables.sample_failed", logging.WARNING, error=exc)
                continue
            self._samples = [*self._samples[-1:], sample]
            self._forget_zeros(sample)

    def _forget_zeros(self, sample: _Sample) -> None:
        """A counter gone from the kernel takes its -Z baseline with it: made anew, it
        counts from 0 by itself."""
        for name in [n for n in self._zeroed if n not in sample.counters]:
            del self._zeroed[name]

    async def stats(self) -> dict[ServiceKey, ServiceStats]:
        if self._plan is None:
            return {}
        now = await self._sample()
        self._forget_zeros(now)
        previous = self._samples[-1] if self._samples else None
        conntrack = await asyncio.to_thread(_nat_connections, self._plan)
        result: dict[ServiceKey, ServiceStats] = {}
        for service in self._plan.services:
            stats = ServiceStats()
            for real in service.reals:
                if real.retired:
                    continue
                counters, rates, active, inactive = self._real_numbers(
                    service, real, now, previous, conntrack)
                stats.reals[real.real.key] = RealStats(active, inactive, counters, rates)
                stats.counters.add(counters)
                for name in ("cps", "in_pps", "out_pps", "in_bps", "out_bps"):
                    setattr(stats.rates, name, getattr(stats.rates, name) + getattr(rates, name))
            result[service.key] = stats
        return result

    def _real_numbers(self, service, real, now: _Sample, previous: _Sample | None,
                      conntrack: dict[tuple[str, str], tuple[int, int]]):
        token = real.token

        def value(name: str, sample: _Sample | None) -> tuple[int, int]:
            return sample.counters.get(name, (0, 0)) if sample is not None else (0, 0)

        def since_zero(name: str) -> tuple[int, int]:
            packets, octets = value(name, now)
            base = self._zeroed.get(name, (0, 0))
            if base[0] > packets or base[1] > octets:
                return packets, octets  # the counter was made anew since
            return packets - base[0], octets - base[1]

        if real.real.forward is Forward.MASQ:
            conns_name, in_name = nat_counter(service, token), None
            active, inactive = conntrack.get((service.token, token), (0, 0))
        else:
            conns_name, in_name = syn_counter(service, token), in_counter(service, token)
            opened = value(conns_name, now)[0]
            closed = value(fin_counter(service, token), now)[0]
            active, inactive = max(0, opened - closed), 0
        conns = since_zero(conns_name)[0]
        packets, octets = since_zero(in_name) if in_name else (0, 0)
        counters = Counters(conns=conns, in_packets=packets, in_bytes=octets)
        rates = Rates()
        if previous is not None and now.at > previous.at:
            seconds = now.at - previous.at
            rates.cps = (value(conns_name, now)[0] - value(conns_name, previous)[0]) / seconds
            if in_name:
                before, after = value(in_name, previous), value(in_name, now)
                rates.in_pps = (after[0] - before[0]) / seconds
                rates.in_bps = (after[1] - before[1]) / seconds
        return counters, rates, active, inactive

    # -- ipvsadm -Z and -L -c --------------------------------------------------------------
    async def zero(self, keys: Collection[ServiceKey] | None) -> None:
        """The kernel's counters stay (they also count ActiveConn for direct routing): what
        they hold now becomes the zero that --stats counts from; rates start afresh."""
        if self._plan is None:
            return
        now = await self._sample()
        for service in self._plan.services:
            if keys is not None and service.key not in keys:
                continue
            for real in service.reals:
                token = real.token
                for name in (nat_counter(service, token), syn_counter(service, token),
                             in_counter(service, token)):
                    if name in now.counters:
                        self._zeroed[name] = now.counters[name]
        self._samples = []

    async def untracked(self) -> list[ServiceKey]:
        """Services with a real server that is not NAT, and fwmark services: the director
        sees one direction of their connections and keeps no state for them."""
        if self._plan is None:
            return []
        return [s.key for s in self._plan.services
                if not s.key.address or any(r.real.forward is not Forward.MASQ
                                            for r in s.reals if not r.retired)]

    async def connections(self) -> list[Connection]:
        """NAT connections, from conntrack; direct routing keeps no per-connection state
        (the director sees one direction only), so those are not listed."""
        if self._plan is None:
            return []
        return await asyncio.to_thread(_nat_connection_list, self._plan)


def _nat_connections(plan: Plan) -> dict[tuple[str, str], tuple[int, int]]:
    """(service, real) -> (established, other) NAT connections, from conntrack."""
    import socket

    wanted: dict[tuple[str, int, str, int], tuple[str, str]] = {}
    families = set()
    for service in plan.services:
        key = service.key
        if not key.address:
            continue  # fwmark services: not counted
        for real in service.reals:
            if real.real.forward is Forward.MASQ and not real.retired:
                port = real.real.port or key.port
                wanted[(key.address, key.port, real.real.address, port)] = \
                    (service.token, real.token)
                families.add(socket.AF_INET6 if key.family == 6 else socket.AF_INET)
    if not wanted:
        return {}
    counts: dict[tuple[str, str], list[int]] = {}
    try:
        for entry, where in _conntrack_walk(families):
            found = wanted.get(where[1:])
            if found is None:
                continue
            info = entry.protoinfo
            state = info.state if info is not None else None
            slot = counts.setdefault(found, [0, 0])
            slot[0 if state in (None, ESTABLISHED) else 1] += 1
    except (OSError, AttributeError, ValueError) as exc:
        vlog.event(log, "nftables.conntrack_failed", logging.WARNING, error=exc)
        return {}
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _text(address: object) -> str:
    import ipaddress

    return str(ipaddress.ip_address(str(address)))


def _conntrack_walk(families: set[int]) -> Iterator[tuple[Any, tuple[Any, str, Any, str, Any]]]:
    """Every conntrack entry of these families with its (protocol, VIP, VIP port, real
    address, real port); pyroute2's errors reach the caller."""
    from pyroute2 import Conntrack

    for family in sorted(families):
        with Conntrack(nfgen_family=family) as ct:
            for entry in ct.dump_entries():
                orig, reply = entry.tuple_orig, entry.tuple_reply
                if orig.daddr is None or reply.saddr is None:
                    continue
                yield entry, (orig.proto, _text(orig.daddr), orig.dport, _text(reply.saddr),
                              reply.sport)


def _nat_connection_list(plan: Plan) -> list[Connection]:
    """The conntrack entries of NAT services' connections, in ipvsadm -L -c's terms."""
    import socket

    wanted: dict[tuple[int, str, int, str, int], str] = {}
    families = set()
    for service in plan.services:
        key = service.key
        if not key.address:
            continue
        number = socket.IPPROTO_UDP if key.protocol.value == "udp" else socket.IPPROTO_TCP
        for real in service.reals:
            if real.real.forward is Forward.MASQ and not real.retired:
                port = real.real.port or key.port
                wanted[(number, key.address, key.port, real.real.address, port)] = \
                    key.protocol.value.upper()
                families.add(socket.AF_INET6 if key.family == 6 else socket.AF_INET)
    if not wanted:
        return []
    found = []
    try:
        for entry, where in _conntrack_walk(families):
            protocol = wanted.get(where)
            if protocol is None:
                continue
            info = entry.protoinfo
            state = "UDP"
            if info is not None and info.state is not None:
                state = TCP_STATES[info.state] if info.state < len(TCP_STATES) else "NONE"
            orig = entry.tuple_orig
            found.append(Connection(protocol, float(entry.timeout or 0), state,
                                    (_text(orig.saddr), orig.sport), where[1:3], where[3:5]))
    except (OSError, AttributeError, ValueError) as exc:
        raise BackendError(f"cannot read conntrack: {exc}") from exc
    return found
