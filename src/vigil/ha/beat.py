"""The heartbeat's own thread: sockets, timers and the node engine, away from resource work.

Resource actions (netlink dumps, scripts, mounts) run on the daemon's main
event loop; if they shared it with the heartbeat, a few milliseconds of
their CPU time would delay heartbeats and, at tight timings, make the peer
look dead. So the node engine, the media sockets, the ping sockets and the
engine's timer live in this thread, on an event loop of their own, at a
higher real-time priority than the main thread. The two threads talk only
through `call_soon_threadsafe`: actions go out to the main loop, results and
commands come in. Python threads share one interpreter lock: the switch
interval is lowered so the heartbeat thread gets it back within a millisecond.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from vigil.ha.engine import NodeEngine, Output
from vigil.ha.settings import HeartbeatSettings
from vigil.ha.watchdog import Watchdog
from vigil.log import event
from vigil.membership.icmp import Pinger
from vigil.membership.media import Medium
from vigil.membership.transports import MediumSocket

log = logging.getLogger("vigil.heartbeat")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
#: how soon a Python thread waiting for the interpreter lock gets it (default 5 ms)
SWITCH_INTERVAL = 0.0005
LOAD_INTERVAL = 5.0
T = TypeVar("T")


class HeartbeatThread:
    """Runs the engine and its sockets in a dedicated thread with its own event loop."""

    def __init__(self, engine: NodeEngine, settings: HeartbeatSettings,
                 on_actions: Callable[[list[object]], None], on_exit: Callable[[], None],
                 priority: int | None = None,
                 on_marks: Callable[[dict[str, tuple[int, int]]], None] | None = None,
                 on_event: Callable[[str, dict[str, object]], None] | None = None,
                 on_output: Callable[[Output, float], None] | None = None):
        self.engine = engine
        self.on_marks = on_marks
        #: every event the engine logs, for notify_command (called in this thread)
        self.on_event = on_event
        #: sees every engine output first, in this thread (metrics count events there)
        self.on_output = on_output
        self.settings = settings
        self.on_actions = on_actions
        self.on_exit = on_exit
        #: SCHED_RR priority of this thread (None: not real-time)
        self.priority = priority
        self.media: dict[str, MediumSocket] = {}
        self.pinger: Pinger | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="vigil-heartbeat", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        #: the timer instant already checked for a stall (each is excused once)
        self._woke_for: float | None = None
        self._last_fault = -1e9
        self._stopping = False
        self._load_fd: int | None = None
        self.watchdog: Watchdog | None = None
        self._infos: dict[str, tuple[int, str | None]] = {}

    # -- life (called from the main thread) ----------------------------------------------------
    def start(self, infos: dict[str, tuple[int, str | None]]) -> None:
        """Open the sockets and start beating; raises what opening them raised."""
        self._infos = dict(infos)
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._shutdown_loop)
        self._thread.join(10)

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run `function` in the heartbeat thread and return its result (blocking)."""
        assert self.loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:  # handed back to the caller
                future.set_exception(exc)
        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    async def ask(self, function: Callable[[], T]) -> T:
        """`call` for a coroutine on another event loop: awaits without blocking it."""
        assert self.loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)
        self.loop.call_soon_threadsafe(run)
        return await asyncio.wrap_future(future)

    def post(self, function: Callable[[], Any]) -> None:
        """Run `function` in the heartbeat thread, without waiting."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(function)

    # -- the thread ----------------------------------------------------------------------------
    def _main(self) -> None:
        self._raise_priority()
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._open(self.settings.media, self.settings)
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            self._close()
            loop.close()
            return
        self._ready.set()
        try:
            self._handle(self.engine.start(loop.time()))
            self._ping()
            self._read_load()
            loop.run_forever()
        finally:
            self._close()
            loop.close()

    def _raise_priority(self) -> None:
        """SCHED_RR for this thread (a new thread starts SCHED_OTHER: reset-on-fork)."""
        if self.priority is None:
            return
        try:
            top = os.sched_get_priority_max(os.SCHED_RR)
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                                  os.sched_param(min(top, self.priority)))
        except OSError as exc:
            event(log, "realtime.refused", logging.WARNING, what="heartbeat thread priority",
                  error=exc.strerror)

    def _open(self, media: tuple[Medium, ...], settings: HeartbeatSettings) -> None:
        assert self.loop is not None
        if settings.watchdog and self.watchdog is None:
            self.watchdog = Watchdog(settings.watchdog, settings.timings.deadtime)
            self.watchdog.open()
        for medium in media:
            key = str(medium)
            if key in self.media:
                continue
            info = self._infos[medium.dev]
            socket_ = MediumSocket(medium, self._received, info=lambda _dev, i=info: i)
            socket_.open(self.loop)
            self.media[key] = socket_
        if settings.pings:
            targets = {p.name: p.addresses for p in settings.pings}
            if self.pinger is None:
                self.pinger = Pinger(targets, self._ping_reply)
            else:
                self.pinger.set_targets(targets)
            self.pinger.open(self.loop)

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.watchdog is not None:
            self.watchdog.close()
            self.watchdog = None
        for medium in self.media.values():
            medium.close()
        self.media.clear()
        if self.pinger is not None:
            self.pinger.close()
        if self._load_fd is not None:
            os.close(self._load_fd)
            self._load_fd = None

    def _shutdown_loop(self) -> None:
        self._stopping = True
        assert self.loop is not None
        self.loop.stop()

    # -- the engine's world (in the thread) ----------------------------------------------------
    def _handle(self, out: Output) -> None:
        if self.on_output is not None and (out.logs or out.actions) and self.loop is not None:
            self.on_output(out, self.loop.time())
        for packet in out.packets:
            for medium in self.media.values():
                medium.send(packet)
        for line in out.logs:
            level = LEVELS.get(line.level, logging.INFO)
            if log.isEnabledFor(level):
                event(log, line.event, level, **line.fields)
            if self.on_event is not None:
                self.on_event(line.event, dict(line.fields))
        if out.marks and self.on_marks is not None:
            self.on_marks(dict(out.marks))
        if out.actions:
            self.on_actions(list(out.actions))
        if out.exit:
            self._stopping = True
            self.on_exit()
            return
        self._reschedule()

    def handle(self, out: Output) -> None:
        """For calls made through `call`/`post`: act on what the engine returned."""
        self._handle(out)

    def _reschedule(self) -> None:
        loop = self.loop
        if loop is None or self._stopping:
            return
        now = loop.time()
        self._woke(now)  # an overdue timer replaced here would hide a stall
        deadline = max(self.engine.next_deadline(now), now + 0.0002)
        if self._timer is not None and self._timer_at == deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._tick)

    def _woke(self, now: float) -> None:
        """Before any input: if the armed timer is overdue, the process stalled; tell
        the engine once, so it reads what queued meanwhile before it judges anyone."""
        due = self._timer_at
        if due is None or due == self._woke_for or now <= due:
            return
        self._woke_for = due
        self._handle_quietly(self.engine.woke(due, now))

    def _handle_quietly(self, out: Output) -> None:
        """Only the log lines of an output: no timer is re-armed from inside another input."""
        for line in out.logs:
            event(log, line.event, LEVELS.get(line.level, logging.INFO), **line.fields)
            if self.on_event is not None:
                self.on_event(line.event, dict(line.fields))

    def _tick(self) -> None:
        assert self.loop is not None
        self._woke(self.loop.time())
        self._timer = None
        self._timer_at = None
        if self.watchdog is not None:
            self.watchdog.tickle()
        try:
            out = self.engine.tick(self.loop.time())
        except Exception as exc:
            # a fault must never stop the heartbeat: the timer is armed again whatever
            # happened, one keepalive on (a fault that repeats cannot spin the thread)
            self._fault("tick", exc)
            self._timer_at = self.loop.time() + self.engine.config.timings.keepalive
            self._timer = self.loop.call_at(self._timer_at, self._tick)
            return
        self._handle(out)

    def _received(self, datagram: bytes, link: str) -> None:
        assert self.loop is not None
        self._woke(self.loop.time())
        try:
            out = self.engine.receive(datagram, link, self.loop.time())
        except Exception as exc:  # this packet is dropped, nothing else
            self._fault("packet", exc)
            return
        self._handle(out)

    def _fault(self, where: str, exc: Exception) -> None:
        """A bug met in the engine: logged (with its traceback once a minute), survived."""
        assert self.loop is not None
        now = self.loop.time()
        detailed = now - self._last_fault >= 60.0
        if detailed:
            self._last_fault = now
        event(log, "engine.fault", logging.ERROR, where=where,
              error=f"{type(exc).__name__}: {str(exc)[:200]}")
        if detailed:
            log.error("engine fault in %s", where, exc_info=exc)

    def _ping_reply(self, name: str) -> None:
        assert self.loop is not None
        self._woke(self.loop.time())
        self._handle(self.engine.ping_reply(name, self.loop.time()))

    def _ping(self) -> None:
        if self.pinger is not None and self.loop is not None and not self._stopping:
            self.pinger.send_all()
            self.loop.call_later(self.engine.config.timings.keepalive, self._ping)

    def _read_load(self) -> None:
        """/proc/loadavg for heartbeat's `ld` field, from an fd kept open."""
        if self.loop is None or self._stopping:
            return
        try:
            if self._load_fd is None:
                self._load_fd = os.open("/proc/loadavg", os.O_RDONLY)
            self.engine.load = os.pread(self._load_fd, 128, 0).decode().strip() or None
        except OSError:
            self.engine.load = None
        self.loop.call_later(LOAD_INTERVAL, self._read_load)

    # -- reload (in the thread) ----------------------------------------------------------------
    def apply_media(self, settings: HeartbeatSettings,
                    infos: dict[str, tuple[int, str | None]]) -> None:
        self._infos.update(infos)
        wanted = {str(m) for m in settings.media}
        for key in [k for k in self.media if k not in wanted]:
            self.media.pop(key).close()
        had_pings = bool(self.settings.pings)
        self.settings = settings
        self._open(settings.media, settings)
        if not settings.pings and self.pinger is not None:
            self.pinger.close()
            self.pinger = None
        elif settings.pings and not had_pings:
            self._ping()

    def report(self) -> dict[str, object]:
        return {"media": [m.report() for m in self.media.values()],
                "ping": dict(self.pinger.counters) if self.pinger else {}}
