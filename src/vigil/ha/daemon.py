"""`vigil heartbeat`: the asyncio shell around the node engine.

The engine decides; this module only moves bytes and time: sockets feed
`engine.receive`, a timer calls `engine.tick` at `engine.next_deadline`,
group actions and fencing run as tasks with timeouts (the heartbeat never
waits for them), log lines go through a queue to a writer thread. Signal
handlers only call into the engine: SIGTERM/SIGINT = graceful shutdown
(every group handed to the peer, then `shutdone`), SIGHUP = reload.

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
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.errors import ConfigError, EnvironmentProblem, VigilError
from vigil.ha.decision import Announce, Fence, StartGroup, StopGroup
from vigil.ha.engine import NodeEngine, Output
from vigil.ha.groups import GroupDriver
from vigil.ha.identity import DEFAULT_STATE_DIR, next_generation, node_uuid
from vigil.ha.settings import HeartbeatSettings, read_settings
from vigil.log import event
from vigil.membership.icmp import Pinger
from vigil.membership.transports import MediumSocket, interface_info
from vigil.subprocesses import run_program

log = logging.getLogger("vigil.heartbeat")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
#: how long a group start or stop may take before it counts as failed
ACTION_TIMEOUT = 300.0
LOAD_INTERVAL = 5.0
MCL_CURRENT, MCL_FUTURE = 1, 2


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
    except OSError as exc:
        report["scheduler"] = f"refused: {exc.strerror}"
        event(log, "realtime.refused", logging.WARNING, what="SCHED_RR", error=exc.strerror)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        error = os.strerror(ctypes.get_errno())
        report["memory"] = f"not locked: {error}"
        event(log, "realtime.refused", logging.WARNING, what="mlockall", error=error)
    else:
        report["memory"] = "locked"
    return report


class PidFile:
    """A pid file that refuses to start a second daemon."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def running_pid(self) -> int | None:
        try:
            pid = int(self.path.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"vigil" in cmdline and pid != os.getpid() else None

    def acquire(self) -> None:
        other = self.running_pid()
        if other is not None:
            raise EnvironmentProblem(f"vigil heartbeat already runs (pid {other}, {self.path})")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(f"{os.getpid()}\n")
        temporary.replace(self.path)

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if int(self.path.read_text().split()[0]) == os.getpid():
                self.path.unlink()


class HeartbeatDaemon:
    def __init__(self, settings: HeartbeatSettings, driver: GroupDriver, *,
                 socket_path: str | Path, state_dir: Path = DEFAULT_STATE_DIR,
                 action_timeout: float = ACTION_TIMEOUT,
                 reader: Callable[..., HeartbeatSettings] = read_settings,
                 realtime: dict[str, object] | None = None,
                 on_ready: Callable[[], None] | None = None):
        self.settings = settings
        self.driver = driver
        self.socket_path = Path(socket_path)
        self.state_dir = state_dir
        self.action_timeout = action_timeout
        self.reader = reader
        self.realtime = realtime or {}
        self.on_ready = on_ready
        self.media: dict[str, MediumSocket] = {}
        self.pinger: Pinger | None = None
        self.engine: NodeEngine | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopped = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load_fd: int | None = None
        self.control: Any = None

    # -- life ----------------------------------------------------------------------------------
    async def run(self) -> int:
        from vigil.control.server import ControlServer

        loop = self._loop = asyncio.get_running_loop()
        settings = self.settings
        uuid = node_uuid(self.state_dir)
        generation = next_generation(self.state_dir)
        now = loop.time()
        engine = self.engine = NodeEngine(settings.node_config(), uuid=uuid,
                                          generation=generation, now=now,
                                          wall_offset=time.time() - now)
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
                self._handle(engine.adopt(group.index))
        try:
            await self._open_media(settings)
            self.control = ControlServer(self.socket_path, self._control)
            await self.control.start()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._shutdown_signal, signum)
            loop.add_signal_handler(signal.SIGHUP, self._reload_signal)
            event(log, "heartbeat.ready", version=__version__, pid=os.getpid(),
                  media=len(self.media), realtime=self.realtime.get("scheduler", "off"))
            self._handle(engine.start(loop.time()))
            if self.on_ready is not None:
                self.on_ready()
            self._ping()
            self._read_load()
            gc.collect()
            gc.freeze()  # start-up garbage never costs a collection pause again
            await self._stopped.wait()
        finally:
            await self._cleanup()
        event(log, "heartbeat.exit", node=settings.me)
        return 0

    async def _open_media(self, settings: HeartbeatSettings) -> None:
        assert self._loop is not None and self.engine is not None
        for medium in settings.media:
            key = str(medium)
            if key in self.media:
                continue
            # netlink (pyroute2) is synchronous: ask it from a worker thread
            info = await asyncio.to_thread(interface_info, medium.dev)
            socket_ = MediumSocket(medium, self._received, info=lambda _dev, i=info: i)
            socket_.open(self._loop)
            self.media[key] = socket_
        if settings.pings:
            targets = {p.name: p.addresses for p in settings.pings}
            if self.pinger is None:
                self.pinger = Pinger(targets, self._ping_reply)
            else:
                self.pinger.set_targets(targets)
            self.pinger.open(self._loop)

    async def _cleanup(self) -> None:
        loop = self._loop
        if loop is not None:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        for medium in self.media.values():
            medium.close()
        if self.pinger is not None:
            self.pinger.close()
        if self.control is not None:
            await self.control.close()
        if self._load_fd is not None:
            os.close(self._load_fd)

    # -- the engine's world --------------------------------------------------------------------
    def _handle(self, out: Output) -> None:
        for packet in out.packets:
            for medium in self.media.values():
                medium.send(packet)
        for line in out.logs:
            level = LEVELS.get(line.level, logging.INFO)
            if log.isEnabledFor(level):
                event(log, line.event, level, **line.fields)
        for action in out.actions:
            self._spawn(self._act(action))
        if out.exit:
            self._stopped.set()
            return
        self._reschedule()

    def _reschedule(self) -> None:
        loop, engine = self._loop, self.engine
        if loop is None or engine is None:
            return
        now = loop.time()
        deadline = max(engine.next_deadline(now), now + 0.0005)
        if self._timer is not None and self._timer_at == deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._timer_at = None
        assert self._loop is not None and self.engine is not None
        self._handle(self.engine.tick(self._loop.time()))

    def _received(self, datagram: bytes, link: str) -> None:
        assert self._loop is not None and self.engine is not None
        self._handle(self.engine.receive(datagram, link, self._loop.time()))

    def _ping_reply(self, name: str) -> None:
        assert self._loop is not None and self.engine is not None
        self._handle(self.engine.ping_reply(name, self._loop.time()))

    def _ping(self) -> None:
        if self.pinger is not None and self._loop is not None and not self._stopped.is_set():
            self.pinger.send_all()
            self._loop.call_later(self.settings.timings.keepalive, self._ping)

    def _read_load(self) -> None:
        """/proc/loadavg for heartbeat's `ld` field, read from an fd kept open."""
        if self._loop is None or self.engine is None or self._stopped.is_set():
            return
        try:
            if self._load_fd is None:
                self._load_fd = os.open("/proc/loadavg", os.O_RDONLY)
            text = os.pread(self._load_fd, 128, 0).decode().strip()
            self.engine.load = text or None
        except OSError:
            self.engine.load = None
        self._loop.call_later(LOAD_INTERVAL, self._read_load)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, action: object) -> None:
        assert self._loop is not None and self.engine is not None
        engine = self.engine
        ok = False
        what = type(action).__name__
        started = self._loop.time()
        try:
            if isinstance(action, StartGroup):
                ok = await asyncio.wait_for(self.driver.start(action.group), self.action_timeout)
            elif isinstance(action, StopGroup):
                ok = await asyncio.wait_for(self.driver.stop(action.group), self.action_timeout)
            elif isinstance(action, Announce):
                await asyncio.wait_for(self.driver.announce(action.group), self.action_timeout)
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
        event(log, "action.done", logging.INFO if ok else logging.ERROR, action=what,
              target=getattr(action, "group", getattr(action, "node", "")), ok=ok,
              seconds=f"{self._loop.time() - started:.3f}")
        if engine is self.engine:
            self._handle(engine.completed(action, ok, self._loop.time()))  # type: ignore[arg-type]

    async def _fence(self, node: str) -> bool:
        settings = self.settings
        commands: list[list[str]] = []
        if settings.fence_command:
            commands.append(["sh", "-c", settings.fence_command.replace("%n", node)])
        for device in settings.stonith_hosts:
            if device.from_host in (settings.me, "*"):
                commands.append(["stonith", "-t", device.device, "-p", " ".join(device.params),
                                 "-T", "reset", node])
        for argv in commands:
            result = await run_program(argv, timeout=settings.fence_timeout)
            event(log, "fence.result", logging.INFO if result.ok else logging.ERROR,
                  node=node, command=argv[0] if argv[0] != "sh" else argv[2],
                  returncode=result.returncode, timed_out=result.timed_out,
                  output=result.output.strip()[-200:])
            if result.ok:
                return True
        return False

    # -- signals and control -------------------------------------------------------------------
    def _shutdown_signal(self, signum: int) -> None:
        assert self._loop is not None and self.engine is not None
        event(log, "signal", signal=signal.Signals(signum).name,
              action="graceful shutdown: handing groups to the peer")
        self._handle(self.engine.command("shutdown", self._loop.time()))

    def _reload_signal(self) -> None:
        event(log, "signal", signal="SIGHUP", action="reload")
        self._spawn(self._reload_task())

    async def _reload_task(self) -> None:
        await self.reload()

    async def reload(self) -> dict[str, Any]:
        assert self._loop is not None and self.engine is not None
        try:
            new = await asyncio.to_thread(self.reader, self.settings.directory,
                                          me=self.settings.me)
        except (ConfigError, VigilError) as exc:
            event(log, "config.reload_failed", logging.ERROR, error=str(exc))
            return {"ok": False, "error": str(exc)}
        out = self.engine.reconfigure(new.node_config(), self._loop.time())
        if any(line.event == "config.refused" for line in out.logs):
            self._handle(out)
            refused = next(line for line in out.logs if line.event == "config.refused")
            return {"ok": False, "error": refused.fields.get("reason", "refused")}
        wanted = {str(m) for m in new.media}
        for key in [k for k in self.media if k not in wanted]:
            self.media.pop(key).close()
        old = self.settings
        self.settings = new
        try:
            await self._open_media(new)
        except VigilError as exc:
            event(log, "config.media_failed", logging.ERROR, error=str(exc))
        if not new.pings and self.pinger is not None:
            self.pinger.close()
            self.pinger = None
        elif new.pings and not old.pings:
            self._ping()
        self._handle(out)
        return {"ok": True, "reason": "configuration reloaded"}

    async def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._loop is not None and self.engine is not None
        command = request.get("command")
        now = self._loop.time()
        if command == "status":
            status = self.engine.status(now)
            status["daemon"] = {
                "pid": os.getpid(), "version": __version__,
                "driver": getattr(self.driver, "name", type(self.driver).__name__),
                "realtime": self.realtime,
                "media": [m.report() for m in self.media.values()],
                "ping": dict(self.pinger.counters) if self.pinger else {},
            }
            return {"ok": True, "status": status}
        if command in ("standby", "takeover"):
            which = request.get("which", "all")
            if which not in ("local", "foreign", "all", "failback"):
                return {"ok": False, "error": f"{command}: local, foreign or all"}
            out = self.engine.command(command, now, which)
            reasons = [line.fields.get("reason", "") for line in out.logs
                       if line.event == "ha.decision"]
            self._handle(out)
            return {"ok": True, "reason": "; ".join(reasons)}
        if command == "reload":
            return await self.reload()
        return {"ok": False, "error": f"unknown command {command!r}"}
