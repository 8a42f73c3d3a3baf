"""`vigil heartbeat`: the asyncio shell around the node engine.

The engine decides; the shell only moves bytes and time. The engine, its
sockets and its timer run in their own thread (`beat.HeartbeatThread`), so
heartbeats never wait behind resource work; this module runs everything
else on the main event loop: group actions and fencing as tasks with
timeouts, the control socket, signals, reload. Log lines go through a queue
to a writer thread. Signal handlers only hand requests to the engine:
SIGTERM/SIGINT = graceful shutdown (every group handed to the peer, then
`shutdone`), SIGHUP = reload.

Heartbeat's `realtime on` is honoured: SCHED_RR (children reset to normal
scheduling on fork) and mlockall, each degrading to a logged warning where
the system refuses. Garbage-collection pauses are kept small by freezing
everything allocated at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.cluster.diff import ConfigDiff, Effect, diff
from vigil.errors import ConfigError, EnvironmentProblem, UsageError, VigilError
from vigil.ha import localdaemons
from vigil.ha.beat import HeartbeatThread
from vigil.ha.decision import (
    Announce,
    CancelStart,
    Fence,
    ProbeHolders,
    StartGroup,
    StopGroup,
)
from vigil.ha.engine import NodeEngine
from vigil.ha.fencing import fence_monitor, fence_off
from vigil.ha.groups import Group, GroupDriver, MonitoringDriver
from vigil.ha.identity import (
    DEFAULT_STATE_DIR,
    load_peer_marks,
    next_generation,
    node_uuid,
    save_peer_marks,
)
from vigil.ha.metrics import HeartbeatMetrics
from vigil.ha.notify import Notifier
from vigil.ha.respawn import Supervisor
from vigil.ha.selfreboot import SelfReboot
from vigil.ha.settings import HeartbeatSettings, read_settings
from vigil.ha.state import Hold
from vigil.ha.statuspage import page_data, render_html, render_json
from vigil.ha.timeline import Timeline
from vigil.log import event
from vigil.membership.transports import interface_info
from vigil.metrics import MetricsServer, parse_address
from vigil.metrics.server import SNAPSHOT_TIMEOUT
from vigil.runtime import STOP_SIGNALS, on_signals
from vigil.subprocesses import run_program
from vigil.tasks import cancel_all, cancel_and_wait

log = logging.getLogger("vigil.heartbeat")

#: how often a group that does not run here is asked whether it could start here
READINESS_INTERVAL = 1.0
#: how long a group start or stop may take before it counts as failed
ACTION_TIMEOUT = 300.0
MCL_CURRENT, MCL_FUTURE = 1, 2
M_ARENA_MAX = -8  # mallopt
THREAD_STACK = 1 << 20


def apply_realtime(settings: HeartbeatSettings) -> dict[str, object]:
    """SCHED_RR + mlockall, as heartbeat's `realtime on`; returns what worked."""
    report: dict[str, object] = {"requested": settings.realtime}
    if not settings.realtime:
        return report
    priority = settings.rtprio
    if priority is None:
        low = os.sched_get_priority_min(os.SCHED_RR)
        high = os.sched_get_priority_max(os.SCHED_RR)
        priority = (low + high) // 2
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                              os.sched_param(priority))
        report["scheduler"] = f"SCHED_RR priority {priority}"
        report["priority"] = priority
    except OSError as exc:
        report["scheduler"] = f"refused: {exc.strerror}"
        event(log, "realtime.refused", logging.WARNING, what="SCHED_RR", error=exc.strerror)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    # Locked memory is what is mapped: keep it small. One malloc arena for all
    # threads (not 64 MiB reserved per thread) and small thread stacks.
    libc.mallopt(M_ARENA_MAX, 1)
    threading.stack_size(THREAD_STACK)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        error = os.strerror(ctypes.get_errno())
        report["memory"] = f"not locked: {error}"
        event(log, "realtime.refused", logging.WARNING, what="mlockall", error=error)
    else:
        report["memory"] = "locked"
    return report


class HeartbeatDaemon:
    def __init__(self, settings: HeartbeatSettings, driver: GroupDriver, *,
                 socket_path: str | Path, state_dir: Path = DEFAULT_STATE_DIR,
                 action_timeout: float = ACTION_TIMEOUT,
                 reader: Callable[..., HeartbeatSettings] = read_settings,
                 realtime: dict[str, object] | None = None,
                 on_ready: Callable[[], None] | None = None):
        self.settings = settings
        #: vigil.cf notify_command, run on cluster events
        self.notifier = (Notifier(settings.notify_command, settings.me)
                         if settings.notify_command else None)
        self.driver = driver
        #: failed_stop reboot and failfast: this node reboots itself
        self.reboot = SelfReboot(settings.reboot_command)
        if hasattr(driver, "on_reboot"):
            driver.on_reboot = self.reboot.reboot
        self.socket_path = Path(socket_path)
        self.state_dir = state_dir
        self.action_timeout = action_timeout
        self.reader = reader
        self.realtime = realtime or {}
        self.on_ready = on_ready
        self.engine: NodeEngine | None = None
        self.beat: HeartbeatThread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._monitors: dict[int, asyncio.Task[None]] = {}
        #: the starts in progress, by group: `CancelStart` ends one
        self._starts: dict[int, asyncio.Task[bool]] = {}
        #: starts ended by `CancelStart` whose completion is not reported yet
        self._cancelled: set[int] = set()
        self._stopped = asyncio.Event()
        self._reloading = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.control: Any = None
        self._marks: dict[str, tuple[int, int]] = {}
        self._marks_writer: asyncio.Task[None] | None = None
        self.supervisor: Supervisor | None = None
        self.debug_level = settings.debug
        self.metrics: HeartbeatMetrics | None = None
        self.metrics_server: MetricsServer | None = None
        #: the last events of interest, for the status page
        self.timeline = Timeline()

    # -- life --------------------------------------------------------------------------------
    async def run(self) -> int:
        from vigil.control.server import ControlServer

        loop = self._loop = asyncio.get_running_loop()
        settings = self.settings
        uuid = node_uuid(self.state_dir)
        generation = next_generation(self.state_dir, settings.hbgenmethod)
        marks, damaged = load_peer_marks(self.state_dir)
        if damaged is not None:
            event(log, "state.damaged", logging.WARNING, detail=damaged,
                  consequence="replayed packets from before this start are not recognised")
        self._marks = dict(marks)
        now = loop.time()
        engine = self.engine = NodeEngine(settings.node_config(), uuid=uuid,
                                          generation=generation, now=now,
                                          wall_offset=time.time() - now, known_peers=marks)
        for warning in settings.warnings:
            event(log, "config.warning", logging.WARNING, detail=warning)
        if settings.auto_failback == "legacy":
            event(log, "config.warning", logging.WARNING,
                  detail="auto_failback legacy behaves as 'on' in vigil; say on or off")
        for group in settings.groups:
            try:
                held = await asyncio.wait_for(self.driver.held(group), self.action_timeout)
            except Exception as exc:
                held = True  # unknown: claim it, so nobody starts it twice
                event(log, "group.probe_failed", logging.ERROR, group=group.key, error=exc)
            if held:
                engine.adopt(group.index)  # the heartbeat thread does not run yet
                self._monitor(group)
            else:  # said before the peer hears us: it must not fail back into a start
                await self._check_readiness(group, lambda why, g=group: [
                    event(log, "ha.decision", reason=d.reason)
                    for d in engine.core.readiness(g.index, why)])
        # netlink (pyroute2) is synchronous: interface facts come from a worker thread
        infos = await self._interface_infos(settings)
        priority = self.realtime.get("priority")
        if settings.metrics_address is not None:
            self.metrics = HeartbeatMetrics(self._metrics_snapshot)
            self._watch_monitors(self.metrics)
        self.beat = HeartbeatThread(engine, settings, self._actions_from_beat,
                                    self._exit_from_beat,
                                    priority=int(priority) + 1 if priority is not None else None,
                                    on_marks=self._marks_from_beat,
                                    on_event=self._event_from_beat,
                                    on_output=self._output_from_beat if self.metrics else None)
        try:
            self.beat.start(infos)
            self.control = ControlServer(self.socket_path, self._control)
            await self.control.start()
            if self.metrics is not None and settings.metrics_address is not None:
                self.metrics_server = MetricsServer(
                    parse_address(settings.metrics_address, "vigil.cf metrics_address"),
                    self.metrics.registry, pages={
                        "/": self._status_page, "/status": self._status_page,
                        "/status.json": self._status_json})
                self.metrics_server.start()
            on_signals(loop, STOP_SIGNALS, self._shutdown_signal)
            loop.add_signal_handler(signal.SIGHUP, self._reload_signal)
            loop.add_signal_handler(signal.SIGUSR1, self._debug_signal, 1)
            loop.add_signal_handler(signal.SIGUSR2, self._debug_signal, -1)
            event(log, "heartbeat.ready", version=__version__, pid=os.getpid(),
                  media=len(settings.media), realtime=self.realtime.get("scheduler", "off"))
            self.timeline.offer("heartbeat.ready", {"version": __version__})
            if not settings.keys.signer.method.needs_key:
                event(log, "auth.insecure", logging.WARNING, method="crc",
                      reason="authkeys selects crc, which authenticates nothing: any host on "
                      "a heartbeat segment can forge this cluster's packets (a forged "
                      "shutdone moves groups without fencing); use sha1 with a secret")
            if settings.fence_agents:
                self._spawn(self._ask_fence_agents())
            self._spawn(self._readiness())
            if settings.respawn:
                self.supervisor = Supervisor(list(settings.respawn), dict(settings.env),
                                             on_failfast=self.reboot.reboot)
                self.supervisor.start()
            if self.on_ready is not None:
                self.on_ready()
            gc.collect()
            gc.freeze()  # start-up garbage never costs a collection pause again
            await self._stopped.wait()
        finally:
            await self._cleanup()
        event(log, "heartbeat.exit", node=settings.me)
        return 0

    @staticmethod
    async def _interface_infos(settings: HeartbeatSettings) -> dict[str, tuple[int, str | None]]:
        infos = {}
        for dev in {m.dev for m in settings.media}:
            infos[dev] = await asyncio.to_thread(interface_info, dev)
        return infos

    async def _cleanup(self) -> None:
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.close)
        loop = self._loop
        if loop is not None:
            # signals stay caught until the loop closes: a second SIGTERM during the stop
            # (an init script's retry, `killall` twice) must not kill the daemon before the
            # heartbeat thread has disarmed the watchdog, or the node would be reset
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                           signal.SIGUSR2):
                loop.add_signal_handler(signum, self._signal_while_stopping, signum)
        if self.supervisor is not None:
            await self.supervisor.stop()
        if self.beat is not None:
            await asyncio.to_thread(self.beat.stop)
            if self.engine is not None:  # the thread is gone: the engine can be read here
                final = {name: mark for name in self.engine.liveness.nodes
                         if (mark := self.engine.rules.mark(name)) is not None}
                if final:
                    self._remember(final)
        if self._marks_writer is not None:
            await asyncio.wait([self._marks_writer], timeout=5.0)
        await cancel_all(self._tasks, 5.0)
        if self.control is not None:
            await self.control.close()
        if self.notifier is not None:
            await self.notifier.close()

    # -- from the heartbeat thread ---------------------------------------------------------------
    def _actions_from_beat(self, actions: list[object]) -> None:
        """Called in the heartbeat thread: hand the actions to the main loop."""
        assert self._loop is not None
        for action in actions:
            self._loop.call_soon_threadsafe(self._spawn_action, action)

    def _event_from_beat(self, name: str, fields: dict[str, object]) -> None:
        """Called in the heartbeat thread: the timeline keeps it (cheap), the notify
        program runs from the main loop."""
        self.timeline.offer(name, fields)
        if self.notifier is not None:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.notifier.submit, name, fields)

    def _marks_from_beat(self, marks: dict[str, tuple[int, int]]) -> None:
        """Called in the heartbeat thread: what each peer sent last goes to disk (off it)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._remember, marks)

    def _remember(self, marks: dict[str, tuple[int, int]]) -> None:
        self._marks.update(marks)
        if self._marks_writer is None or self._marks_writer.done():
            self._marks_writer = asyncio.get_running_loop().create_task(self._write_marks())

    async def _write_marks(self) -> None:
        """One write at a time; marks that arrive meanwhile go with the next one."""
        written: dict[str, tuple[int, int]] = {}
        while written != self._marks:
            written = dict(self._marks)
            try:
                await asyncio.to_thread(save_peer_marks, written, self.state_dir)
            except EnvironmentProblem as exc:
                event(log, "state.write_failed", logging.ERROR, detail=exc)
                return

    def _output_from_beat(self, out: Any, now: float) -> None:
        """Called in the heartbeat thread: events the metrics count (cheap, no I/O)."""
        assert self.metrics is not None and self.engine is not None
        why = self.engine.core.why
        self.metrics.engine_output(out, why.__getitem__, now)

    def _watch_monitors(self, metrics: HeartbeatMetrics) -> None:
        if hasattr(self.driver, "on_verdict"):
            self.driver.on_verdict = metrics.monitor_verdict
            self.driver.on_restart = metrics.restarted

    def _metrics_snapshot(self) -> dict[str, Any]:
        """Called in a scrape thread: the status `vigil status` shows, from the heartbeat
        thread, with a timeout (a scrape waits; the heartbeat never does)."""
        engine, beat = self.engine, self.beat
        if engine is None or beat is None or beat.loop is None:
            raise VigilError("the heartbeat thread is not running")
        status = beat.call(self._status_now, timeout=SNAPSHOT_TIMEOUT)
        return self._with_daemon(status)

    def _page_data(self) -> dict[str, Any]:
        """Called in a page request's thread: what the status page shows."""
        resources = {group.key: group.resources for group in self.settings.groups}
        return page_data(self._metrics_snapshot(), resources, self.timeline.events(),
                         lvs=localdaemons.directors(), volumes=localdaemons.volumes())

    def _status_page(self) -> tuple[str, bytes]:
        return "text/html; charset=utf-8", render_html(self._page_data()).encode()

    def _status_json(self) -> tuple[str, bytes]:
        return "application/json", render_json(self._page_data())

    def _status_now(self) -> dict[str, Any]:
        """In the heartbeat thread: the engine's status and the media counters."""
        engine, beat = self.engine, self.beat
        assert engine is not None and beat is not None and beat.loop is not None
        return {**engine.status(beat.loop.time()), "media": beat.report()}

    def _with_daemon(self, status: dict[str, Any]) -> dict[str, Any]:
        report = status.pop("media")
        status["daemon"] = {
            "pid": os.getpid(), "version": __version__,
            "driver": getattr(self.driver, "name", type(self.driver).__name__),
            "realtime": self.realtime, **report}
        return status

    def _exit_from_beat(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stopped.set)

    def _spawn_action(self, action: object) -> None:
        self._spawn(self._act(action))

    async def _ask_fence_agents(self) -> None:
        """At start, as `vigil check` does: a fence device that does not answer `monitor`
        is said now, not found out when a node must be fenced."""
        for node, agent, params in self.settings.fence_agents:
            problem = await fence_monitor(agent, dict(params), self.settings.fence_timeout)
            if problem is None:
                event(log, "fence.monitor", node=node, agent=agent, ok=True)
            else:
                event(log, "fence.monitor", logging.ERROR, node=node, agent=agent, ok=False,
                      detail=problem, consequence=f"fencing {node} would fail")

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, action: object) -> None:
        assert self._loop is not None and self.engine is not None and self.beat is not None
        ok = False
        what = type(action).__name__
        started = self._loop.time()
        try:
            if isinstance(action, StartGroup):
                ok = await self._start(action.group)
                if ok:
                    self._monitor(action.group)
            elif isinstance(action, StopGroup):
                await self._unmonitor(action.group)
                ok = await asyncio.wait_for(self.driver.stop(action.group), self.action_timeout)
                handoff = getattr(self.driver, "handoff", None)
                if ok and action.handoff and handoff is not None:
                    self._spawn(self._handoff(handoff, action.group))
            elif isinstance(action, Announce):
                await asyncio.wait_for(self.driver.announce(action.group), self.action_timeout)
                return
            elif isinstance(action, ProbeHolders):
                await self._probe_holders(action.group)
                return
            elif isinstance(action, CancelStart):
                self._cancel_start(action.group)
                return
            elif isinstance(action, Fence):
                ok = await self._fence(action.node)
            else:
                return
        except TimeoutError:
            event(log, "action.timeout", logging.ERROR, action=what,
                  seconds=self.action_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a driver bug is a failed action, not a dead daemon
            event(log, "action.error", logging.ERROR, action=what, error=repr(exc))
        done: dict[str, object] = {
            "action": what, "target": getattr(action, "group", getattr(action, "node", "")),
            "ok": ok, "seconds": f"{self._loop.time() - started:.3f}"}
        level = logging.INFO if ok else logging.ERROR
        cancelled = isinstance(action, StartGroup) and action.group.index in self._cancelled
        if cancelled:
            assert isinstance(action, StartGroup)
            self._cancelled.discard(action.group.index)
            done["cancelled"] = True
            level = logging.INFO if ok else logging.WARNING  # asked for, not a failure
        if self.metrics is not None:
            self.metrics.action_done(action, ok, self._loop.time(), cancelled=cancelled)
        event(log, "action.done", level, **done)
        self.timeline.offer("action.done", done)
        if self.notifier is not None:
            self.notifier.submit("action.done", done)
        engine, beat = self.engine, self.beat
        beat.post(lambda: beat.handle(
            engine.completed(action, ok, beat.loop.time())))  # type: ignore[arg-type,union-attr]

    async def _start(self, group: Group) -> bool:
        """Start a group within the action timeout; a `CancelStart` ends it as failed
        (its programs are ended, what it started is then stopped by the engine)."""
        start = asyncio.get_running_loop().create_task(self.driver.start(group))
        self._starts[group.index] = start
        try:
            done, _ = await asyncio.wait([start], timeout=self.action_timeout)
            if not done:
                start.cancel()
                await asyncio.wait([start])
                raise TimeoutError
            if start.cancelled():
                return False
            return start.result()
        except asyncio.CancelledError:
            start.cancel()
            await asyncio.wait([start])
            raise
        finally:
            if self._starts.get(group.index) is start:
                del self._starts[group.index]

    def _cancel_start(self, group: Group) -> None:
        start = self._starts.get(group.index)
        if start is None or start.done():
            return
        event(log, "group.start_cancelled", logging.WARNING, group=group.key,
              reason="the peer keeps it")
        self._cancelled.add(group.index)
        start.cancel()

    async def _probe_holders(self, group: Group) -> None:
        """Ask whether another host answers for a held group's addresses; the engine
        decides what an answer means. A driver that cannot ask answers nothing."""
        assert self.engine is not None and self.beat is not None
        answered_elsewhere = getattr(self.driver, "answered_elsewhere", None)
        if answered_elsewhere is None:
            return
        if not await asyncio.wait_for(answered_elsewhere(group), self.action_timeout):
            return
        engine, beat = self.engine, self.beat
        beat.post(lambda: beat.handle(
            engine.holders_answered(group.index, beat.loop.time())))  # type: ignore[union-attr]

    async def _handoff(self, handoff: Callable[[Group], Awaitable[None]], group: Group) -> None:
        """The peer keeps a group stopped here: its addresses are announced at its MAC."""
        try:
            await asyncio.wait_for(handoff(group), self.action_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # best effort: the keeper's own announcements remain
            event(log, "action.error", logging.WARNING, action="handoff", error=repr(exc))

    def _monitor(self, group: Group) -> None:
        """Watch a group that runs here, if the driver can (the agents layer can)."""
        if not isinstance(self.driver, MonitoringDriver) or group.index in self._monitors:
            return
        task = asyncio.get_running_loop().create_task(self._watch(group))
        self._monitors[group.index] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unmonitor(self, group: Group) -> None:
        task = self._monitors.pop(group.index, None)
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):  # the monitor's own failure: it is over
                await cancel_and_wait([task])

    async def _watch(self, group: Group) -> None:
        assert isinstance(self.driver, MonitoringDriver)
        try:
            reason = await self.driver.monitor(group)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            event(log, "monitor.error", logging.ERROR, group=group.key, error=repr(exc))
            return
        finally:
            if self._monitors.get(group.index) is asyncio.current_task():
                del self._monitors[group.index]
        engine, beat = self.engine, self.beat
        assert engine is not None and beat is not None
        beat.post(lambda: beat.handle(
            engine.group_failed(group.index, reason, beat.loop.time())))  # type: ignore

    async def _readiness(self) -> None:
        """Every second, ask whether each group that does not run here could start here
        (a replicated disk still syncing cannot be promoted): the engine tells the peer,
        which keeps such a group rather than fail it back into a start that must fail."""
        unready = getattr(self.driver, "unready", None)
        engine, beat = self.engine, self.beat
        if unready is None or engine is None or beat is None:
            return
        while not self._stopped.is_set():
            await asyncio.sleep(READINESS_INTERVAL)
            holds = await beat.ask(lambda: list(engine.core.hold))
            for group in self.settings.groups:
                if holds[group.index] not in (Hold.RELEASED, Hold.UNREADY):
                    continue
                await self._check_readiness(group, lambda why, g=group: beat.post(
                    lambda: beat.handle(engine.group_readiness(g.index, why,
                                                               beat.loop.time()))))

    async def _check_readiness(self, group: Group, tell: Callable[[str | None], object]) -> None:
        """Ask the driver whether `group` could start here and tell the engine (via `tell`)."""
        unready = getattr(self.driver, "unready", None)
        if unready is None:
            return
        try:
            why = await unready(group)
        except Exception as exc:  # cannot tell: the start decides, as before
            event(log, "group.readiness_unknown", logging.WARNING, group=group.key,
                  error=f"{type(exc).__name__}: {exc}")
            why = None
        tell(why)

    async def _fence(self, node: str) -> bool:
        settings = self.settings
        for name, agent, params in settings.fence_agents:
            if name != node.lower():
                continue
            outcome = await fence_off(agent, dict(params), settings.fence_timeout)
            event(log, "fence.result", logging.INFO if outcome.fenced else logging.ERROR,
                  node=node, agent=agent, fenced=outcome.fenced, detail=outcome.reason)
            self.timeline.offer("fence.result", {"node": node, "agent": agent,
                                                 "fenced": outcome.fenced})
            if outcome.fenced:
                return True
        commands: list[list[str]] = []
        if settings.fence_command:
            commands.append(["sh", "-c", settings.fence_command.replace("%n", node)])
        for device in settings.stonith_hosts:
            if device.from_host in (settings.me, "*"):
                commands.append(device.command(node))
        for argv in commands:
            result = await run_program(argv, timeout=settings.fence_timeout)
            event(log, "fence.result", logging.INFO if result.ok else logging.ERROR,
                  node=node, command=argv[0] if argv[0] != "sh" else argv[2],
                  returncode=result.returncode, timed_out=result.timed_out,
                  output=result.output.strip()[-200:])
            self.timeline.offer("fence.result", {"node": node, "fenced": result.ok,
                                                 "returncode": result.returncode,
                                                 "timed_out": result.timed_out})
            if result.ok:
                return True
        return False

    # -- signals and control ---------------------------------------------------------------------
    def _command(self, name: str, which: str = "all") -> Callable[[], list[str]]:
        """A request for the engine, to be run in the heartbeat thread."""
        engine, beat = self.engine, self.beat
        assert engine is not None and beat is not None

        def run() -> list[str]:
            out = engine.command(name, beat.loop.time(), which)  # type: ignore[union-attr]
            beat.handle(out)
            return [line.fields.get("reason", "") for line in out.logs
                    if line.event == "ha.decision"]
        return run

    def _shutdown_signal(self, signum: int) -> None:
        assert self.beat is not None
        event(log, "signal", signal=signal.Signals(signum).name,
              action="graceful shutdown: handing groups to the peer")
        self.beat.post(self._command("shutdown"))

    def _signal_while_stopping(self, signum: int) -> None:
        event(log, "signal", signal=signal.Signals(signum).name,
              action="ignored: the daemon is already stopping")

    def _debug_signal(self, step: int) -> None:
        """heartbeat's SIGUSR1 (one debug level more) and SIGUSR2 (one less)."""
        from vigil.log import set_debug
        self.debug_level = max(0, min(255, self.debug_level + step))
        set_debug(self.debug_level > 0)
        event(log, "log.debug_level", level=self.debug_level,
              signal="SIGUSR1" if step > 0 else "SIGUSR2")

    def _reload_signal(self) -> None:
        event(log, "signal", signal="SIGHUP", action="reload")
        self._spawn(self._reload_task())

    async def _reload_task(self) -> None:
        await self.reload()

    async def reload(self) -> dict[str, Any]:
        """One reload at a time: each compares against what the previous one applied."""
        async with self._reloading:
            return await self._reload()

    async def _reload(self) -> dict[str, Any]:
        assert self.engine is not None and self.beat is not None
        engine, beat = self.engine, self.beat
        try:
            new = await asyncio.to_thread(self.reader, self.settings.directory,
                                          me=self.settings.me)
            infos = await self._interface_infos(new)
        except (ConfigError, VigilError) as exc:
            event(log, "config.reload_failed", logging.ERROR, error=str(exc))
            self.timeline.offer("config.reload_failed", {})
            return {"ok": False, "error": str(exc)}
        changes = self._changes(new)
        if changes is not None and changes.empty:
            event(log, "config.unchanged", detail="the files say what runs already: "
                                                  "nothing applied")
            return {"ok": True, "reason": "configuration unchanged: nothing applied"}

        def apply() -> dict[str, Any]:
            out = engine.reconfigure(new.node_config(), beat.loop.time())  # type: ignore
            refused = [line for line in out.logs if line.event == "config.refused"]
            if not refused:
                try:
                    beat.apply_media(new, infos)
                except VigilError as exc:
                    event(log, "config.media_failed", logging.ERROR, error=str(exc))
            beat.handle(out)
            if refused:
                return {"ok": False, "error": refused[0].fields.get("reason", "refused")}
            return {"ok": True, "reason": "configuration reloaded"}

        answer = await beat.ask(apply)
        if answer["ok"]:
            reconfigure = getattr(self.driver, "reconfigure", None)
            if reconfigure is not None and new.source is not None:
                from vigil.agents.options import options_from_extension
                reconfigure(options_from_extension(new.source.extension))
            for what, old_value, new_value in (
                    ("respawn", self.settings.respawn, new.respawn),
                    ("watchdog", self.settings.watchdog, new.watchdog),
                    ("metrics_address", self.settings.metrics_address, new.metrics_address)):
                if old_value != new_value:
                    event(log, "config.restart_needed", logging.WARNING, setting=what,
                          detail="applied at the next start of vigil heartbeat")
                    self.timeline.offer("config.restart_needed", {"setting": what})
            self.settings = new
            if changes is not None:
                answer["changes"] = [str(change) for change in changes.changes]
        return answer

    def _changes(self, new: HeartbeatSettings) -> ConfigDiff | None:
        """What the reload changes, file by file, each logged (None: nothing to compare)."""
        old_source, new_source = self.settings.source, new.source
        if old_source is None or new_source is None:
            return None
        changes = diff(old_source, new_source)
        for change in changes.changes:
            event(log, "config.changed", logging.WARNING if change.effect is Effect.RESTART
                  else logging.INFO, section=change.section, change=str(change))
            # the page says what changed, never the values (a fence password may be one)
            self.timeline.offer("config.changed", {"section": change.section,
                                                   "what": f"{change.key} {change.kind}"})
        return changes

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.engine is not None and self.beat is not None
        beat = self.beat
        command = request.get("command")
        if command == "status":
            status = self._with_daemon(await beat.ask(self._status_now))
            return {"ok": True, "status": status}
        if command in ("standby", "takeover"):
            which = request.get("which", "all")
            if which not in ("local", "foreign", "all", "failback"):
                return {"ok": False, "error": f"{command}: local, foreign or all"}
            reasons = await beat.ask(self._command(command, which))
            return {"ok": True, "reason": "; ".join(reasons)}
        if command == "cleanup":
            which = request.get("group", "all")
            if not isinstance(which, str) or not 0 < len(which) <= 512:
                return {"ok": False, "error": "cleanup: a group's key or all"}
            try:
                reasons = await beat.ask(self._command(command, which))
            except UsageError as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "reason": "; ".join(reasons)}
        if command == "reload":
            return await self.reload()
        return {"ok": False, "error": f"unknown command {command!r}"}
