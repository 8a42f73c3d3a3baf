"""`vigil heartbeat` under vigil.cf's `cluster_backend etcd`: groups held by leases.

Each haresources group has a key in etcd (`PREFIX/groups/GROUP`); a node runs the
group only while that key is held under its own lease (`vigil.cluster.lease`
decides, `vigil.cluster.lease_loop` carries it out). Each node also keeps a
presence key (`PREFIX/nodes/NODE`) under a lease, so the others know whether a
group's home node is up (`vigil.cluster.placement`). Any number of nodes; no
consensus of vigil's own: etcd's majority is the only judge.

What heartbeat's daemon does with ha.cf's media, deadtime and fencing has no
part here (`vigil check` says so): a node cut off from etcd's majority stops its
groups `lease_margin` before its lease can end, and only then can another node's
create-if-absent succeed. ha.cf's ping nodes keep their meaning: each node says
under its presence lease how many it reaches (`PREFIX/reach/NODE`), and one that
reaches fewer than the best node up holds nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.clock import Clock, MonotonicClock
from vigil.cluster.etcd import EtcdError, EtcdGateway
from vigil.cluster.lease import LeaseSettings, Phase
from vigil.cluster.lease_loop import LeaseLoop
from vigil.cluster.placement import Placement, fitness, wants
from vigil.config.extension import ExtensionConfig, etcd_endpoint_list
from vigil.config.hacf import validate as validate_hacf
from vigil.errors import VigilError
from vigil.ha.groups import Group, GroupDriver
from vigil.ha.selfreboot import SelfReboot
from vigil.ha.settings import HeartbeatSettings
from vigil.ha.watchdog import Watchdog
from vigil.log import event
from vigil.membership.icmp import Pinger
from vigil.runtime import STOP_SIGNALS, on_signals
from vigil.tasks import cancel_all

log = logging.getLogger("vigil.etcd")

#: after a failed start or a failed monitor, this node leaves the group to the others
#: for this many lease TTLs
FAILED_BACKOFF_TTLS = 2
#: how often the watchdog (ha.cf `watchdog`) is written while the event loop runs
WATCHDOG_TICK = 0.5
#: how often ha.cf's ping nodes are pinged
PING_EVERY = 1.0
#: how often each etcd member is asked how it is (for `vigil status`)
MEMBERS_EVERY = 5.0
#: between two attempts at a stop that failed (each attempt retries itself stop_retries times)
STOP_RETRY_PAUSE = 5.0
#: how long a stop waits for the group's monitor to end once cancelled
MONITOR_END_GRACE = 5.0


class GroupFailed(VigilError):
    """A group's start or stop did not succeed (the driver has logged why)."""


def watchdog_seconds(lease: LeaseSettings) -> int:
    """The watchdog's timeout: a hung or killed daemon resets the node before its leases can
    end in etcd, so before another node may start what still runs here."""
    return max(1, math.floor(lease.ttl - lease.margin) - 1)


def lease_settings(extension: ExtensionConfig) -> LeaseSettings:
    ttl = extension.lease_ttl
    return LeaseSettings(ttl=ttl, margin=extension.lease_margin, poll_every=min(1.0, ttl / 8))


class GroupSeat:
    """One group on this node: its lease loop, its preference, its monitor."""

    def __init__(self, group: Group, loop: LeaseLoop, placement: Placement):
        self.group = group
        self.loop = loop
        self.placement = placement
        self.free_since: float | None = None
        self.failed_until = 0.0
        self.monitor: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None


class EtcdClusterDaemon:
    """The groups of haresources, each held through its lease in etcd."""

    def __init__(self, settings: HeartbeatSettings, driver: GroupDriver, *,
                 socket_path: str | Path, on_ready: Callable[[], None] | None = None,
                 clock: Clock | None = None, gateway: EtcdGateway | None = None,
                 lease: LeaseSettings | None = None):
        assert settings.source is not None
        self.settings = settings
        self.extension = settings.source.extension
        self.driver = driver
        self.socket_path = Path(socket_path)
        self.on_ready = on_ready
        self.clock = clock or MonotonicClock()
        self.me = settings.me.lower()
        self.prefix = self.extension.etcd_prefix.rstrip("/")
        self.lease = lease or lease_settings(self.extension)
        self.gateway = gateway or EtcdGateway(etcd_endpoint_list(self.extension.etcd_endpoints),
                                              timeout=min(2.0, max(0.3, self.lease.ttl / 10)))
        self.reboot = SelfReboot(settings.reboot_command)
        if hasattr(driver, "on_reboot"):
            driver.on_reboot = self.reboot.reboot
        self.seats: dict[str, GroupSeat] = {}
        self.presence: LeaseLoop | None = None
        self.present: dict[str, bool] = {}
        self.standby = False
        self.store_error: str | None = None
        #: each member's last answer, for `vigil status`
        self.members: list[dict[str, Any]] = []
        #: ha.cf's ping nodes: when each last answered, and what each node says it reaches
        self.pinger: Pinger | None = None
        self.heard: dict[str, float] = {}
        self.reach: dict[str, int] = {}
        self.fit: dict[str, bool] = {}
        self._published: tuple[int, int] | None = None
        #: ha.cf's deadping when written there (its default, deadtime, is not used here),
        #: else three pings unanswered
        written = "deadping" in settings.source.hacf.where
        self.ping_dead = (settings.timings.deadping or settings.timings.deadtime) if written \
            else 3 * PING_EVERY
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.control: Any = None

    # -- life ------------------------------------------------------------------------
    async def run(self) -> int:
        from vigil.control.server import ControlServer

        loop = asyncio.get_running_loop()
        for warning in self.settings.warnings:
            event(log, "config.warning", logging.WARNING, detail=warning)
        assert self.settings.source is not None
        for said in validate_hacf(self.settings.source.hacf, "etcd"):
            event(log, "config.warning", logging.WARNING, detail=said.message)
        # the socket first: a second daemon is refused before it touches a lease
        self.control = ControlServer(self.socket_path, self._control)
        await self.control.start()
        on_signals(loop, STOP_SIGNALS, self._shutdown_signal)
        watchdog: Watchdog | None = None
        presence_task: asyncio.Task[Any] | None = None
        try:
            for group in self.settings.groups:
                await self._stop_stale(group)
            if self.settings.watchdog:
                watchdog = Watchdog(self.settings.watchdog, 0.0, watchdog_seconds(self.lease))
                watchdog.open()
                self._spawn(self._feed(watchdog))
            self.presence = LeaseLoop(self.lease, self.me, self.gateway,
                                      f"{self.prefix}/nodes/{self.me}", _nothing, _nothing,
                                      clock=self.clock)
            auto_failback = self.settings.auto_failback != "off"
            for group in self.settings.groups:
                seat = GroupSeat(group, LeaseLoop(self.lease, self.me, self.gateway,
                                                  f"{self.prefix}/groups/{group.key}",
                                                  functools.partial(self._start, group),
                                                  functools.partial(self._stop, group),
                                                  clock=self.clock),
                                 Placement(group.home.lower() if group.home else None,
                                           auto_failback, grace=self.lease.ttl))
                self.seats[group.key] = seat
            self._place()  # before the first acquire: a node that is not home waits
            presence_task = self._spawn(self.presence.run())
            for seat in self.seats.values():
                seat.task = self._spawn(seat.loop.run())
            if self.settings.pings:
                self.pinger = Pinger({p.name: p.addresses for p in self.settings.pings},
                                     self._ping_reply)
                self.pinger.open(loop)
                self._spawn(self._ping())
            self._spawn(self._watch_homes())
            self._spawn(self._watch_members())
            event(log, "heartbeat.ready", version=__version__, pid=os.getpid(), backend="etcd",
                  groups=len(self.seats), ttl=self.lease.ttl, margin=self.lease.margin)
            if self.on_ready is not None:
                self.on_ready()
            await self._stopped.wait()
        finally:
            # groups first (each stops, then revokes its lease), presence last
            for seat in self.seats.values():
                seat.loop.shutdown()
                if seat.monitor is not None:
                    seat.monitor.cancel()
            tasks = [s.task for s in self.seats.values() if s.task is not None]
            if tasks:
                await asyncio.wait(tasks)
            if self.presence is not None and presence_task is not None:
                self.presence.shutdown()
                await asyncio.wait([presence_task])
            await cancel_all(self._tasks, 5.0)
            if self.pinger is not None:
                self.pinger.close()
            if self.control is not None:
                await self.control.close()
            if watchdog is not None:
                watchdog.close()  # the groups are stopped: disarmed
        event(log, "heartbeat.exit", node=self.me)
        return 0

    @staticmethod
    async def _feed(watchdog: Watchdog) -> None:
        while True:
            watchdog.tickle()
            await asyncio.sleep(WATCHDOG_TICK)

    def stop(self) -> None:
        """Stop the groups held here, end the leases, return from `run`."""
        self._stopped.set()

    def _shutdown_signal(self, signum: int) -> None:
        action = "already stopping" if self._stopped.is_set() else \
            "stopping the groups held here, then ending the leases"
        event(log, "signal", signal=signal.Signals(signum).name, action=action)
        self._stopped.set()

    async def _stop_stale(self, group: Group) -> None:
        """Resources found running at start ran under a lease this process no longer
        has: they are stopped before this node may take any group."""
        try:
            held = await self.driver.held(group)
        except Exception as exc:
            held = True
            event(log, "group.probe_failed", logging.ERROR, group=group.key, error=exc)
        if held:
            event(log, "group.stale", logging.WARNING, group=group.key,
                  action="stopping what runs from before: no lease covers it")
            if not await self.driver.stop(group):
                raise GroupFailed(f"{group.key}: what runs from before will not stop")

    # -- the group's start and stop, as the lease loop asks -----------------------------
    async def _start(self, group: Group) -> None:
        seat = self.seats[group.key]
        if not await self.driver.start(group):
            self._leave_for_a_while(seat, "the start failed here")
            raise GroupFailed(f"{group.key}: the start failed")
        event(log, "group.started", group=group.key, backend="etcd")
        monitor = getattr(self.driver, "monitor", None)
        if monitor is not None:
            seat.monitor = self._spawn(self._monitor(seat, monitor))

    async def _monitor(self, seat: GroupSeat,
                       monitor: Callable[[Group], Awaitable[str]]) -> None:
        reason = await monitor(seat.group)
        self._leave_for_a_while(seat, f"the monitor gave up: {reason}")

    async def _stop(self, group: Group) -> None:
        seat = self.seats[group.key]
        monitor, seat.monitor = seat.monitor, None
        if monitor is not None and monitor is not asyncio.current_task():
            await self._end_monitor(group, monitor)
        event(log, "group.stopping", group=group.key, backend="etcd")
        if await self.driver.stop(group):
            event(log, "group.stopped", group=group.key, backend="etcd")
            return
        # what would not stop may still run, while the lease may soon let another node
        # start it: heartbeat's answer, reboot (failed_stop block cannot hold a lease)
        await self.reboot.reboot(f"{group.key} would not stop and its lease cannot be "
                                 "kept for it")
        await asyncio.sleep(STOP_RETRY_PAUSE)
        raise GroupFailed(f"{group.key}: the stop failed")

    @staticmethod
    async def _end_monitor(group: Group, monitor: asyncio.Task[None]) -> None:
        """Cancel the group's monitor before its stop; one that does not end within
        MONITOR_END_GRACE does not hold the stop up (it is left cancelled, and said)."""
        if await cancel_all([monitor], MONITOR_END_GRACE):
            event(log, "group.monitor_lingers", logging.WARNING, group=group.key,
                  seconds=MONITOR_END_GRACE, action="stopping the group all the same")
        elif not monitor.cancelled():
            monitor.exception()  # its failure is the reason we stop: said by the monitor

    def _leave_for_a_while(self, seat: GroupSeat, why: str) -> None:
        seat.failed_until = self.clock.now() + FAILED_BACKOFF_TTLS * self.lease.ttl
        event(log, "group.leaving", logging.WARNING, group=seat.group.key, why=why,
              seconds=FAILED_BACKOFF_TTLS * self.lease.ttl)
        self._place()

    # -- who wants what ------------------------------------------------------------------
    def _ping_reply(self, name: str) -> None:
        self.heard[name] = self.clock.now()

    async def _ping(self) -> None:
        assert self.pinger is not None
        while True:
            self.pinger.send_all()
            await asyncio.sleep(PING_EVERY)

    def my_reach(self) -> int | None:
        """How many ping nodes answered within deadping (None: ha.cf names none)."""
        if not self.settings.pings:
            return None
        now = self.clock.now()
        return sum(1 for p in self.settings.pings
                   if now - self.heard.get(p.name, -1e9) <= self.ping_dead)

    async def _share_reach(self) -> None:
        """Say this node's reach under its presence lease; read every node's."""
        mine = self.my_reach()
        if mine is None or self.presence is None:
            return
        lease = self.presence.lease
        if lease is not None and self.presence.rule.phase is Phase.HOLDING \
                and self._published != (lease, mine):
            await asyncio.to_thread(self.gateway.put, f"{self.prefix}/reach/{self.me}",
                                    str(mine), lease)
            self._published = (lease, mine)
            event(log, "ping.reach", reach=mine, of=len(self.settings.pings))
        said = await asyncio.to_thread(self.gateway.under, f"{self.prefix}/reach/")
        self.reach = {key.rsplit("/", 1)[-1]: int(value) for key, value in said.items()
                      if value.isdigit() and len(value) < 6}

    async def _watch_homes(self) -> None:
        """Every poll: is each group's home node up (its presence key)? Then place."""
        homes = {s.placement.home for s in self.seats.values()} - {None, self.me}
        while True:
            try:
                await self._share_reach()
            except (EtcdError, OSError) as exc:
                self.store_error = str(exc)[:300]
            for home in homes:
                assert home is not None
                try:
                    found = await asyncio.to_thread(self.gateway.holder,
                                                    f"{self.prefix}/nodes/{home}")
                    self.present[home] = found is not None
                    self.store_error = None
                except (EtcdError, OSError) as exc:
                    self.store_error = str(exc)[:300]  # the last word is kept
            self._place()
            await asyncio.sleep(self.lease.poll_every)

    async def _watch_members(self) -> None:
        """Every few seconds: each member's health, asked of it alone."""
        endpoints = etcd_endpoint_list(self.extension.etcd_endpoints)
        while True:
            found = []
            for index, endpoint in enumerate(endpoints):
                try:
                    said = await asyncio.to_thread(self.gateway.member_status, index)
                except (EtcdError, OSError) as exc:
                    found.append({"endpoint": endpoint, "up": False,
                                  "error": str(exc)[:200]})
                    continue
                found.append({"endpoint": endpoint, "up": True, "leader": said.leader,
                              "version": said.version, "raft_term": said.raft_term})
            self.members = found
            await asyncio.sleep(MEMBERS_EVERY)

    def _place(self) -> None:
        now = self.clock.now()
        self.fit = fitness(self.reach, self.me, self.my_reach())
        for seat in self.seats.values():
            rule = seat.loop.rule
            holding = rule.phase is Phase.HOLDING
            if rule.holder is None and not holding:
                seat.free_since = seat.free_since if seat.free_since is not None else now
            else:
                seat.free_since = None
            home = seat.placement.home
            home_up = self.present.get(home or "", True) and self.fit.get(home or "", True)
            wanted = now >= seat.failed_until and wants(
                seat.placement, self.me, home_present=home_up, holding=holding,
                free_since=seat.free_since, now=now, standby=self.standby,
                fit=self.fit.get(self.me, True))
            if wanted != rule.wants:
                event(log, "group.placement", group=seat.group.key, wants=wanted,
                      home=home or "-", home_up=self.present.get(home or ""))
                rule.want(wanted)
                seat.loop.poke()

    # -- the control socket ----------------------------------------------------------------
    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "status":
            return {"ok": True, "status": self.status()}
        if command in ("standby", "takeover"):
            self.standby = command == "standby"
            self._place()
            return {"ok": True, "reason": "every group held here is stopped and left to the "
                    "other nodes" if self.standby else "this node may hold groups again"}
        return {"ok": False, "error": f"{command!r} is not available with cluster_backend "
                "etcd (status, standby, takeover are)"}

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        presence = self.presence.rule if self.presence is not None else None
        return {
            "backend": "etcd", "node": self.me, "standby": self.standby,
            "etcd": {"endpoints": list(etcd_endpoint_list(self.extension.etcd_endpoints)),
                     "prefix": self.prefix, "ttl": self.lease.ttl,
                     "margin": self.lease.margin, "last_error": self.store_error,
                     "members": list(self.members),
                     "reached": presence is not None and presence.phase is Phase.HOLDING
                     and presence.valid_until > now},
            "homes": dict(self.present),
            "ping_reach": {"here": self.my_reach(), "nodes": dict(self.reach),
                           "fit": dict(self.fit)} if self.settings.pings else None,
            "groups": [{
                "key": seat.group.key, "home": seat.placement.home,
                "holder": seat.loop.rule.holder, "phase": seat.loop.rule.phase.value,
                "running": seat.loop.rule.running, "wants": seat.loop.rule.wants,
                "lease_left": round(max(0.0, seat.loop.rule.valid_until - now), 3)
                if seat.loop.rule.phase is Phase.HOLDING else None,
            } for seat in self.seats.values()],
            "daemon": {"pid": os.getpid(), "version": __version__},
        }

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _nothing() -> None:
    """The presence key runs nothing: its existence is the message."""
