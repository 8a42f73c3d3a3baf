"""The director daemon: config -> checks -> policy -> reconcile -> backend, live.

One asyncio loop does everything: the check engine, the health policy, table
syncs, autoreload and maintenance polling, alerts and fallback commands (as
tasks with timeouts), and a unix control socket (`vigil director status`,
`vigil lvs`). Signal handlers only set events. A reload re-reads the file and
applies only the difference: unchanged real servers keep their state and
connections; a file that does not parse leaves the running config in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vigil import log as vlog
from vigil.clock import MonotonicClock
from vigil.control.server import ControlServer
from vigil.director import alerts, codec
from vigil.director.adapter import load_config
from vigil.director.announce import (
    AnnouncePolicy,
    Cause,
    Change,
    Inputs,
    nat_problems,
    reals_up,
)
from vigil.director.backends.base import Backend, BackendError, Timeouts
from vigil.director.changes import describe as describe_changes
from vigil.director.checkers.base import CheckResult
from vigil.director.engine import CheckEngine, CheckTarget, targets_for
from vigil.director.health import (
    NO_DECISION,
    Decision,
    HealthPolicy,
    RunFallbackCommand,
    SendAlert,
    SoftFailure,
    State,
    Transition,
)
from vigil.director.metrics import DirectorMetrics
from vigil.director.role import Current, Role, SideEffectGate
from vigil.director.settings import DirectorConfig
from vigil.director.speaker import Speaker
from vigil.errors import VigilError
from vigil.lvs.operations import (
    DeleteReal,
    Operation,
    OperationError,
    apply_operations,
    service_key,
)
from vigil.lvs.reconcile import reconcile
from vigil.lvs.syncdaemon import SyncDaemon, SyncDaemonError, SyncState, state_from_json
from vigil.lvs.table import RealKey, ServiceKey, Table
from vigil.metrics import MetricsAddress, MetricsServer
from vigil.metrics.server import SNAPSHOT_TIMEOUT
from vigil.runtime import STOP_SIGNALS, PidFile, event_loop_runner, on_signals
from vigil.subprocesses import run_program

log = logging.getLogger("vigil.director")

RUN_DIR = Path(os.environ.get("VIGIL_RUN_DIR", "/run/vigil"))
STATE_DIR = Path(os.environ.get("VIGIL_STATE_DIR", "/var/lib/vigil/director"))
#: The instance that keeps hand-made tables (`vigil lvs -A ...` without a config).
MANUAL_INSTANCE = "lvs"
#: How often the config file and the maintenance directory are looked at.
POLL_INTERVAL = 1.0
#: Changes arriving within this window are applied as one transaction.
SYNC_BATCH = 0.005
#: The longest connection timeout --set takes, in seconds (31 days).
MAX_TIMEOUT = 31 * 24 * 3600
#: How long fallbackcommand and callback may run.
COMMAND_TIMEOUT = 30.0
#: how long an announcing director waits for its data path to settle after its first
#: round of checks (the nftables backend settles within 5 s), and how often it looks
SETTLE_WAIT = 10.0
SETTLE_POLL = 0.05


@dataclass(frozen=True)
class Paths:
    instance: str

    @property
    def pid(self) -> Path:
        return RUN_DIR / f"director.{self.instance}.pid"

    @property
    def socket(self) -> Path:
        return RUN_DIR / f"director.{self.instance}.sock"

    @property
    def state(self) -> Path:
        """The director's role, for `status` without a round trip: active or standby."""
        return RUN_DIR / f"director.{self.instance}.state"

    @property
    def manual(self) -> Path:
        return STATE_DIR / f"{self.instance}.manual.json"


def instance_name(config_path: Path | None) -> str:
    return config_path.name if config_path is not None else MANUAL_INSTANCE


class Director:
    """One running director: a config file (or none: a hand-kept table) and a backend."""

    def __init__(self, config_path: Path | None, backend: Backend,
                 concurrency: int = 1000, metrics_address: MetricsAddress | None = None,
                 standby: bool = False, speaker: Speaker | None = None,
                 holddown: float = 0.0, conntrack_sync: bool = False,
                 linger: float = 0.0, sync: SyncDaemon | None = None):
        self.config_path = config_path
        #: the IPVS connection sync daemon to run: master while active, backup on standby
        self.sync_daemon = sync
        #: started as a warm standby: it stays when it is deactivated
        self.resident = standby
        self.gate = SideEffectGate(active=not standby)
        self.paths = Paths(instance_name(config_path))
        self.backend = backend
        self.clock = MonotonicClock()
        self.config = DirectorConfig()
        self.policy = HealthPolicy(self.config, self.clock.now())
        self.engine = CheckEngine(self.on_result, self.clock, concurrency)
        self.manual = Table()
        self.unmanaged = Table()
        self.applied = Table()
        self._dirty = asyncio.Event()
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stamp: tuple[float, str] | None = None
        self._names: dict[str, tuple[str, ...]] = {}
        self.syncs = 0
        self.metrics_address = metrics_address
        self.metrics: DirectorMetrics | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the BGP speaker told which VIPs this director announces (--announce)
        self.speaker = speaker
        self.announcer = AnnouncePolicy(holddown)
        self.draining = False
        #: conntrackd synchronises the directors' connection tracking: NAT may announce
        self.conntrack_sync = conntrack_sync
        #: how long a stopping director forwards after its withdrawals (routers converge)
        self.linger = linger

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        on_signals(loop, (*STOP_SIGNALS, signal.SIGQUIT), lambda _signum: self._stop.set())
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        self._write_state()
        if self.config_path is not None:
            self.config = self.refuse_unsafe(load_config(self.config_path))
            self._stamp = self._file_stamp()
        self._load_manual()
        if self.speaker is not None:
            await self.speaker.start()
        await self.backend.start()
        await self.backend.set_active(self.gate.active)
        if self.sync_daemon is not None and not self.backend.has_sync_daemon:
            vlog.event(log, "director.sync_daemon_ignored", logging.WARNING,
                       daemon=self.sync_daemon.describe(), backend=self.backend.name,
                       reason="only IPVS has a connection sync daemon (the nftables "
                              "backend's direct routing needs none: every director's slot "
                              "table sends a flow to the same server)")
            self.sync_daemon = None
        await self._follow_role_with_sync()
        actual = await self.backend.read()
        managed = {s.key for s in self.config.services} | {s.key for s in self.manual}
        self.unmanaged = Table.of(s for s in actual if s.key not in managed)
        self.applied = actual
        self.policy = HealthPolicy(self.config, self.clock.now())
        await self._resolve_names()
        await self.sync()
        self.engine.set_targets(targets_for(self.config.services))
        self._write_state()
        self.announce()  # a table without checks (checktype=on) is settled at once
        vlog.event(log, "director.started", config=self.config_path or "-",
                   backend=self.backend.name, services=len(self.config.services),
                   checks=len(self.engine.targets), role=self.role.value)
        server = ControlServer(self.paths.socket, self._answer)
        await server.start()
        metrics_server: MetricsServer | None = None
        try:
            metrics_server = self._start_metrics(loop)
            async with asyncio.TaskGroup() as group:
                engine_task = group.create_task(self.engine.run())
                sync_task = group.create_task(self._sync_loop())
                poll_task = group.create_task(self._poll_loop())
                await self._main_loop()
                for task in (engine_task, sync_task, poll_task):
                    task.cancel()
        finally:
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.close)
            await server.close()
            await self._shutdown()

    def _start_metrics(self, loop: asyncio.AbstractEventLoop) -> MetricsServer | None:
        if self.metrics_address is None:
            return None
        self._loop = loop
        self.metrics = DirectorMetrics(self._metrics_snapshot)
        self.engine.on_timing = self.metrics.check_done
        metrics_server = MetricsServer(self.metrics_address, self.metrics.registry)
        metrics_server.start()
        return metrics_server

    def _metrics_snapshot(self) -> dict[str, Any]:
        """Called in a scrape thread: the status, gathered on the director's loop."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._snapshot(), self._loop)
        try:
            return future.result(SNAPSHOT_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise

    async def _snapshot(self) -> dict[str, Any]:
        return {"config": str(self.config_path) if self.config_path else None,
                "backend": self.backend.name, "phase": self.policy.phase,
                "active": self.gate.active, "syncs": self.syncs, "table": await self.backend.read(),
                "stats": await self.backend.stats(), "health": self.policy.snapshot(),
                "announce": self.announce_status()}

    async def _main_loop(self) -> None:
        while not self._stop.is_set():
            stop = asyncio.ensure_future(self._stop.wait())
            reload = asyncio.ensure_future(self._reload.wait())
            deadlines = [d for d in (self.policy.next_deadline(),
                                     self.announcer.next_deadline()) if d is not None]
            deadline = min(deadlines) if deadlines else None
            timeout = None if deadline is None else max(0.0, deadline - self.clock.now())
            await asyncio.wait({stop, reload}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            reload.cancel()
            if self._reload.is_set():
                self._reload.clear()
                await self.reload("SIGHUP")
            self.handle(self.policy.tick(self.clock.now()))
            self.announce()

    async def _shutdown(self) -> None:
        self.policy.phase = "stopping"
        # withdraw first: the routers stop sending before the table goes
        withdrawn = self.announcer.withdraw_all(Cause.STOPPING)
        self._tell(withdrawn)
        if withdrawn and self.linger > 0:
            vlog.event(log, "announce.linger", seconds=self.linger)
            await asyncio.sleep(self.linger)
        final = self.policy.stop_table()
        final = Table.of([*final, *self.manual, *self.unmanaged])
        try:
            await self._apply(final)
        except BackendError as exc:
            vlog.event(log, "director.cleanstop_failed", logging.ERROR, error=exc)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stop_sync()
        await self.backend.close()
        if self.speaker is not None:
            await self.speaker.close()
        with contextlib.suppress(OSError):
            self.paths.state.unlink()
        vlog.event(log, "director.stopped", config=self.config_path or "-")

    # -- the table -----------------------------------------------------------------------
    def desired(self) -> Table:
        managed = self.policy.desired()
        keys = {s.key for s in managed}
        extra = [s for s in (*self.manual, *self.unmanaged) if s.key not in keys]
        return Table.of([*managed, *extra])

    async def sync(self) -> None:
        await self._apply(self.desired())

    async def _apply(self, desired: Table) -> None:
        actual = await self.backend.read()
        operations = reconcile(desired, actual)
        if not operations:
            return
        await self.backend.apply(operations, desired)
        self.applied = desired
        self.syncs += 1
        for op in operations:
            vlog.event(log, "table.change", logging.DEBUG, op=str(op))
        vlog.event(log, "table.applied", operations=len(operations))

    async def _sync_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # Let the results that arrive together (a switch dying takes many servers
            # at once) land in one transaction.
            await asyncio.sleep(SYNC_BATCH)
            self._dirty.clear()
            try:
                await self.sync()
            except BackendError as exc:
                vlog.event(log, "table.apply_failed", logging.ERROR, error=exc)
                await asyncio.sleep(1.0)
                self._dirty.set()

    # -- results and decisions -----------------------------------------------------------
    def on_result(self, target: CheckTarget, result: CheckResult) -> None:
        now = self.clock.now()
        for service, real in target.members:
            decision = self.policy.observe(service, real, result.ok, now, result.message)
            if decision is not NO_DECISION:
                self.handle(decision)
            if target.config.monitorfile or len(target.members) > 1:
                config = self.config.service(service)
                if config is not None and config.monitorfile:
                    self._monitor(config.monitorfile, service, real, result)
        if self.policy.phase == "starting" and self.engine.checks_run >= len(self.engine.targets):
            self.policy.phase = "running"
            self.backend.settled()
            self.announce()
            if self.speaker is not None and not self.backend.takes_moved_flows():
                self._spawn(self._announce_once_forwarding())

    def handle(self, decision: Decision) -> None:
        if not decision.actions and not decision.reason:
            return
        changed = False
        for action in decision.actions:
            if isinstance(action, Transition):
                changed = True
                vlog.event(log, f"real.{action.new}", service=action.service.label,
                           real=action.real, was=action.old, why=action.why)
            elif isinstance(action, SoftFailure):
                vlog.event(log, "real.soft_failure", logging.WARNING,
                           service=action.service.label, real=action.real,
                           count=f"{action.count}/{action.limit}", why=action.why)
            elif not self.gate.admit(action):
                vlog.event(log, "director.held", logging.DEBUG, action=type(action).__name__,
                           why="standby")
            elif isinstance(action, RunFallbackCommand):
                self._spawn(self._run_command(action.argv, "fallbackcommand"))
            elif isinstance(action, SendAlert):
                self._spawn(self._send_alert(action))
        if decision.fallback_changed:
            changed = True
            vlog.event(log, "director.decision", reason=decision.reason)
        if changed:
            self._dirty.set()
            self.announce()

    # -- announcements to the routers (active-active) -------------------------------------
    def announce_inputs(self) -> Inputs:
        """What the announcement decision reads: reals up per VIP, role and phase."""
        services = []
        for key, health in self.policy.services.items():
            counted = health.config.check.checktype != "off"
            services.append((key.address, [
                counted and real.state is State.UP and not real.maintenance
                and not real.removed_by_hand for real in health.reals.values()]))
        return Inputs(reals_up=reals_up(services),
                      settled=(self.policy.phase in ("running", "reloading")
                               or (self.policy.phase == "starting" and not self.engine.targets))
                      and self.backend.takes_moved_flows(),
                      active=self.gate.active, draining=self.draining,
                      stopping=self.policy.phase == "stopping")

    def refuse_unsafe(self, config: DirectorConfig) -> DirectorConfig:
        """Active-active directors and NAT: refused unless conntrack is synchronised."""
        if self.speaker is None or self.conntrack_sync:
            return config
        problems = nat_problems(
            (s.key.label, [(str(r.key), r.real.forward.value) for r in s.reals])
            for s in config.services)
        if problems:
            raise VigilError(
                f"{self.config_path}: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                + ": active-active directors (--announce) share no connection tracking, "
                "so a reply may come back through a director that did not translate it; "
                "use gate or ipip, or synchronise conntrack with conntrackd and name its "
                "configuration in vigil.cf (conntrackd_conf)")
        return config

    def announce(self) -> None:
        """Bring the speaker's announcements in line with the director's state."""
        if self.speaker is None:
            return
        self._tell(self.announcer.update(self.announce_inputs(), self.clock.now()))

    async def _announce_once_forwarding(self) -> None:
        """The data path settles a moment after the first round of checks (it learns
        first, dropping mid-connection packets it cannot place): announce then, not
        before, or the flows a router moves here would stall."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_WAIT
        while not self.backend.takes_moved_flows() and loop.time() < deadline:
            await asyncio.sleep(SETTLE_POLL)
        self.announce()

    def _tell(self, changes: list[Change]) -> None:
        if self.speaker is None or not changes:
            return
        for change in changes:
            vlog.event(log, "announce.announced" if change.announce else "announce.withdrawn",
                       prefix=change.prefix, cause=str(change.cause))
        self.speaker.send(changes)

    def set_draining(self, on: bool) -> None:
        if on != self.draining:
            self.draining = on
            vlog.event(log, "director.draining" if on else "director.undrained",
                       config=self.config_path or "-")
        self.announce()

    def announce_status(self) -> dict[str, Any] | None:
        if self.speaker is None:
            return None
        return {"speaker": self.speaker.name, "draining": self.draining,
                "holddown": self.announcer.holddown, "vips": self.announcer.snapshot()}

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_command(self, argv: list[str], what: str) -> None:
        result = await run_program(argv, COMMAND_TIMEOUT)
        level = logging.INFO if result.ok else logging.WARNING
        vlog.event(log, f"{what}.done", level, argv=" ".join(argv), rc=result.returncode,
                   timed_out=result.timed_out)

    async def _send_alert(self, alert: SendAlert) -> None:
        try:
            await alerts.send(alert.smtp, self.config.emailalertfrom, alert.recipients,
                              alert.subject, alert.body)
            vlog.event(log, "alert.sent", to=",".join(alert.recipients), subject=alert.subject)
        except (OSError, ValueError, TimeoutError) as exc:
            vlog.event(log, "alert.failed", logging.WARNING, error=exc)

    def _monitor(self, path: str, service: ServiceKey, real: RealKey,
                 result: CheckResult) -> None:
        import time

        stamp = time.strftime("%a %b %d %H:%M:%S %Y")
        state = "up" if result.ok else "down"
        message = result.message.replace("|", "%7c").replace("\n", "%0a")
        try:
            with open(path, "a") as handle:
                handle.write(f"[{stamp}] [{os.getpid()}] {real.address} {real.port} "
                             f"[{state}] {message}\n")
        except OSError as exc:
            vlog.event(log, "monitorfile.failed", logging.WARNING, path=path, error=exc)

    # -- reload, autoreload, maintenance -------------------------------------------------
    async def reload(self, why: str) -> bool:
        if self.config_path is None:
            return False
        try:
            config = self.refuse_unsafe(load_config(self.config_path))
        except VigilError as exc:
            vlog.event(log, "config.rejected", logging.ERROR, why=why, error=exc)
            return False
        changes = describe_changes(self.config, config)
        for change in changes:
            vlog.event(log, "config.changed", why=why, change=change)
        if not changes:
            vlog.event(log, "config.unchanged", why=why,
                       detail="the file says what runs already: nothing applied")
            return True
        self.policy.phase = "reloading"
        self.config = config
        self.handle(self.policy.configure(config, self.clock.now()))
        self.engine.set_targets(targets_for(config.services))
        await self._resolve_names()
        self.policy.phase = "running"
        self._dirty.set()
        self.announce()
        vlog.event(log, "config.reloaded", why=why, services=len(config.services),
                   checks=len(self.engine.targets), changes=len(changes))
        return True

    def _file_stamp(self) -> tuple[float, str] | None:
        try:
            stat = os.stat(self.config_path)  # type: ignore[arg-type]
            digest = hashlib.md5(Path(self.config_path).read_bytes()).hexdigest()  # type: ignore[arg-type]
        except OSError:
            return None
        return stat.st_mtime, digest

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            await self._check_file()
            self._check_maintenance()

    async def _check_file(self) -> None:
        if self.config_path is None or self._stamp is None:
            return
        try:
            mtime = os.stat(self.config_path).st_mtime
        except OSError:
            return
        if mtime == self._stamp[0]:
            return
        stamp = self._file_stamp()
        if stamp is None:
            return
        changed = stamp[1] != self._stamp[1]
        self._stamp = stamp
        if not changed:
            return
        vlog.event(log, "config.file_changed", path=self.config_path,
                   action="reload" if self.config.autoreload else "ignored")
        callback = self.config.callback
        if self.config.autoreload:
            await self.reload("autoreload")
        if callback and os.access(callback, os.X_OK):
            self._spawn(self._run_command([callback, str(self.config_path)], "callback"))

    def _check_maintenance(self) -> None:
        directory = self.config.maintenancedir
        if not directory:
            return
        try:
            present = set(os.listdir(directory))
        except OSError:
            present = set()
        now = self.clock.now()
        for service in self.config.services:
            for spec in service.reals:
                real = spec.real
                names = self._names.get(real.address, ())
                candidates = [f"{real.address}:{real.port}", real.address]
                for name in names:
                    candidates += [f"{name}:{real.port}", name]
                on = any(c in present for c in candidates)
                self.handle(self.policy.set_maintenance(service.key, real.key, on, now))

    async def _resolve_names(self) -> None:
        """Host names for maintenance files (fqdn and short), looked up once per config."""
        if not self.config.maintenancedir:
            return
        addresses = {r.real.address for s in self.config.services for r in s.reals}
        for address in addresses - set(self._names):
            try:
                async with asyncio.timeout(2.0):
                    host = (await asyncio.to_thread(socket.gethostbyaddr, address))[0]
            except (OSError, TimeoutError):
                self._names[address] = ()
                continue
            short = host.split(".")[0]
            self._names[address] = tuple(dict.fromkeys((host, short)))

    # -- active or warm standby ------------------------------------------------------------
    @property
    def role(self) -> Role:
        return Role.ACTIVE if self.gate.active else Role.STANDBY

    async def set_active(self, active: bool, resident: bool = False) -> None:
        """Become the active director or a warm standby: the backend narrows or opens its
        data path in one transaction; checks, health and table are untouched."""
        self.resident = self.resident or resident
        if active == self.gate.active:
            self._write_state()
            return
        await self.backend.set_active(active)
        for command in self.gate.set_active(active):
            self._spawn(self._run_command(command.argv, "fallbackcommand"))
        await self._follow_role_with_sync()
        self._write_state()
        self.announce()
        vlog.event(log, f"director.{self.role.value}", config=self.config_path or "-",
                   resident=self.resident)

    async def _follow_role_with_sync(self) -> None:
        """The configured sync daemon in the role's state: master sends this director's
        connections, backup receives its peer's. The other state is stopped first (the
        kernel runs one of each); a failure is logged and forwarding goes on."""
        if self.sync_daemon is None:
            return
        state = SyncState.MASTER if self.gate.active else SyncState.BACKUP
        wanted = replace(self.sync_daemon, state=state)
        try:
            running = await self.backend.sync_daemons()
            for daemon in running:
                if daemon.state is not wanted.state:
                    await self.backend.stop_sync_daemon(daemon.state)
            if not any(daemon.state is wanted.state for daemon in running):
                await self.backend.start_sync_daemon(wanted)
        except BackendError as exc:
            vlog.event(log, "director.sync_daemon_failed", logging.ERROR,
                       daemon=wanted.describe(), error=exc)

    async def _stop_sync(self) -> None:
        if self.sync_daemon is None:
            return
        try:
            for daemon in await self.backend.sync_daemons():
                await self.backend.stop_sync_daemon(daemon.state)
        except BackendError as exc:
            vlog.event(log, "director.sync_daemon_failed", logging.ERROR, error=exc)

    def _write_state(self) -> None:
        current = Current(self.role, self.resident)
        self.paths.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.paths.state.with_name(self.paths.state.name + ".tmp")
        tmp.write_text(json.dumps({"role": current.role.value, "resident": current.resident,
                                   "pid": os.getpid()}) + "\n")
        tmp.replace(self.paths.state)

    # -- hand-made tables ----------------------------------------------------------------
    def _load_manual(self) -> None:
        try:
            self.manual = codec.table_from_json(json.loads(self.paths.manual.read_text()))
        except (OSError, ValueError, KeyError):
            self.manual = Table()

    def _save_manual(self) -> None:
        self.paths.manual.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.paths.manual.with_suffix(".tmp")
        tmp.write_text(json.dumps(codec.table_to_json(self.manual)))
        tmp.replace(self.paths.manual)

    async def edit(self, operations: list[Operation]) -> str:
        """`vigil lvs` edits: hand-kept services change; managed ones only lose servers."""
        managed = {s.key for s in self.config.services}
        manual_ops: list[Operation] = []
        notes = []
        for op in operations:
            key = service_key(op)
            if key in managed:
                if isinstance(op, DeleteReal):
                    decision = self.policy.removed_by_hand(key, op.real)
                    notes.append(decision.reason)
                    continue
                raise VigilError(f"{key} is managed by {self.config_path}: edit that file "
                                 "(only removing a real server by hand is allowed)")
            manual_ops.append(op)
        base = Table.of([*self.manual, *[s for s in self.unmanaged
                                         if s.key not in self.manual.service_map]])
        try:
            updated = apply_operations(base, manual_ops)
        except OperationError as exc:
            raise VigilError(str(exc)) from None
        before = (self.manual, self.unmanaged)
        self.unmanaged = Table()
        self.manual = updated
        try:
            await self.sync()
        except BackendError:
            # all or nothing: the backend kept its table, so the hand-kept one stays too
            self.manual, self.unmanaged = before
            raise
        self._save_manual()
        self.announce()  # a real server removed by hand may have been the VIP's last
        return "; ".join(n for n in notes if n) or f"{len(operations)} change(s) applied"

    # -- ipvsadm -Z, -L -c, --timeout, --set -----------------------------------------------
    async def zero(self, key: ServiceKey | None) -> None:
        if key is not None and (await self.backend.read()).service(key) is None:
            raise VigilError(f"{key} does not exist")
        await self.backend.zero(None if key is None else {key})

    async def set_timeouts(self, values: list[Any]) -> Timeouts:
        if len(values) != 3 or not all(type(v) is int and 0 <= v <= MAX_TIMEOUT
                                       for v in values):
            raise VigilError(f"timeouts are three whole seconds 0..{MAX_TIMEOUT} "
                             "(tcp tcpfin udp; 0 keeps one)")
        return await self.backend.set_timeouts(Timeouts(*values))

    # -- control socket ------------------------------------------------------------------
    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        if command == "status":
            return {
                "ok": True,
                "pid": os.getpid(),
                "config": str(self.config_path) if self.config_path else None,
                "backend": self.backend.name,
                "phase": self.policy.phase,
                "role": self.role.value,
                "resident": self.resident,
                "checks": len(self.engine.targets),
                "checks_run": self.engine.checks_run,
                "table": codec.table_to_json(await self.backend.read()),
                "stats": codec.stats_to_json(await self.backend.stats()),
                "health": self.policy.snapshot(),
                "announce": self.announce_status(),
            }
        if command == "edit":
            operations = [codec.operation_from_json(op) for op in request.get("operations", [])]
            return {"ok": True, "message": await self.edit(operations)}
        if command == "reload":
            return {"ok": await self.reload("control")}
        if command == "zero":
            key = request.get("key")
            await self.zero(None if key is None else codec.key_from_json(key))
            return {"ok": True}
        if command == "connections":
            return {"ok": True, "connections": [codec.connection_to_json(c) for c in
                                                await self.backend.connections()],
                    "services": len(await self.backend.read()),
                    "untracked": [codec.key_to_json(k) for k in await self.backend.untracked()]}
        if command == "timeouts":
            return {"ok": True, "timeouts": vars(await self.backend.timeouts())}
        if command == "set-timeouts":
            return {"ok": True, "timeouts": vars(await self.set_timeouts(
                list(request.get("timeouts", []))))}
        if command == "sync-daemons":
            return {"ok": True, "daemons": [d.to_json() for d in
                                            await self.backend.sync_daemons()]}
        if command == "start-sync-daemon":
            try:
                daemon = SyncDaemon.from_json(request.get("daemon"))
            except SyncDaemonError as exc:
                raise VigilError(str(exc)) from None
            await self.backend.start_sync_daemon(daemon)
            return {"ok": True}
        if command == "stop-sync-daemon":
            try:
                state = state_from_json(request.get("state"))
            except SyncDaemonError as exc:
                raise VigilError(str(exc)) from None
            await self.backend.stop_sync_daemon(state)
            return {"ok": True}
        if command in ("drain", "undrain"):
            self.set_draining(command == "drain")
            return {"ok": True, "announce": self.announce_status()}
        if command in ("activate", "deactivate"):
            await self.set_active(command == "activate", bool(request.get("resident")))
            return {"ok": True, "role": self.role.value}
        raise VigilError(f"unknown command {command!r}")


def pid_file(instance: str) -> PidFile:
    """The pid file of `instance`'s director: it counts while a vigil director holds it
    (`vigil.director.child` names both words), not a later process with the number."""
    return PidFile(Paths(instance).pid, ("vigil", "director"), f"vigil director {instance}")


def read_state(instance: str) -> Current:
    """The node's director for `instance`: its role as its state file says, if it runs."""
    paths = Paths(instance)
    pid = pid_file(instance).running_pid()
    if pid is None:
        return Current()
    try:
        state = json.loads(paths.state.read_text())
        if state.get("pid") == pid:
            return Current(Role(state["role"]), bool(state.get("resident")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # running, but no role written by this process (an older vigil): as before, a
    # running director is the active one
    return Current(Role.ACTIVE)


#: a log target "syslog:FACILITY" (ldirectord's logfile="local0") instead of a file
SYSLOG_PREFIX = "syslog:"
#: where a detached director logs when its syslog facility cannot be reached
FALLBACK_LOG = "/var/log/vigil/director.log"


def split_log_target(target: str | None) -> tuple[str | None, str | None]:
    """(file, syslog facility) from a log target: a path, or "syslog:FACILITY"."""
    if target and target.startswith(SYSLOG_PREFIX):
        return None, target.removeprefix(SYSLOG_PREFIX)
    return target or None, None


def run_daemon(config_path: Path | None, backend: Backend, logfile: str | None,
               debug: bool = False, stream: bool = True,
               metrics_address: MetricsAddress | None = None, standby: bool = False,
               speaker: Speaker | None = None, holddown: float = 0.0,
               conntrack_sync: bool = False, linger: float = 0.0,
               sync: SyncDaemon | None = None) -> int:
    """Run in the foreground until SIGTERM (the daemonizing is the CLI's job)."""
    pids = pid_file(instance_name(config_path))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    logfile, facility = split_log_target(logfile)
    vlog.setup_logging(logfile, debug=debug, stream=stream or not (logfile or facility),
                       facility=facility, ident="vigil-director", fallback_file=FALLBACK_LOG)
    pids.write()
    try:
        event_loop_runner()(Director(config_path, backend, metrics_address=metrics_address,
                                     standby=standby, speaker=speaker,
                                     holddown=holddown,
                                     conntrack_sync=conntrack_sync,
                                     linger=linger, sync=sync).run())
    finally:
        pids.release()
        vlog.stop_logging()
    return 0
