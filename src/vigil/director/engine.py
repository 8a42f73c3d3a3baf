"""The check engine: one scheduler for every check, bounded concurrency.

Two parts. `CheckSchedule` is pure timing (an injected `now`, no asyncio): which
checks are due, when the next one is, and when a finished check runs again
(`interval` after it started, never two at once). `CheckEngine` is the thin
asyncio shell: it sleeps until the next deadline, starts due checks as tasks
(at most `concurrency` at a time), bounds each with its timeout, retries up to
`checkcount` attempts and reports every result through a callback.

Checks with the same identity (same real server, port and check parameters
in several virtual services) run once and their result goes to every member.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from vigil.clock import Clock, MonotonicClock
from vigil.director.checkers import checker_for
from vigil.director.checkers.base import CheckRequest, CheckResult
from vigil.director.checkers.connect import ConnectProber
from vigil.director.settings import RealSpec, ServiceConfig
from vigil.director.source import SourceChooser
from vigil.lvs.table import RealKey, ServiceKey

log = logging.getLogger("vigil.director.engine")


class CheckIdent:
    """A check's identity with its hash computed once (the engine hashes it per run)."""

    __slots__ = ("_hash", "key")

    def __init__(self, key: tuple):
        self.key = key
        self._hash = hash(key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CheckIdent) and self.key == other.key

    def __repr__(self) -> str:
        return f"CheckIdent({self.key[1]}:{self.key[2]})"


@dataclass(frozen=True)
class CheckTarget:
    """One check to run periodically and who receives its result."""

    ident: Hashable
    config: ServiceConfig  # the first service that has this check
    real: RealSpec
    members: tuple[tuple[ServiceKey, RealKey], ...]

    @property
    def interval(self) -> float:
        return self.config.checkinterval

    @functools.cached_property
    def plain_connect(self) -> bool:
        """A TCP connect check with one attempt: the engine's fast path."""
        spec = self.config.check
        return (spec.checktype == "connect" and spec.checkcount <= 1
                and self.config.key.protocol.value != "udp")

    def request(self, negotiate: bool, source: str | None = None) -> CheckRequest:
        config, spec = self.config, self.config.check
        protocol = "udp" if config.key.protocol.value == "udp" else "tcp"
        timeout = spec.negotiatetimeout if negotiate else spec.checktimeout
        return CheckRequest(
            address=self.real.real.address,
            port=config.check_port(self.real),
            protocol=protocol,
            spec=spec,
            request=self.real.request if self.real.request is not None else spec.request,
            receive=self.real.receive if self.real.receive is not None else spec.receive,
            virtual=config.key,
            real_port=self.real.real.port or config.key.port,
            timeout=timeout,
            source=source,
        )


def targets_for(services: Iterable[ServiceConfig]) -> list[CheckTarget]:
    """Every check the configuration needs (none for checktype on/off)."""
    grouped: dict[Hashable, list[tuple[ServiceConfig, RealSpec]]] = {}
    for service in services:
        if service.check.checktype in ("on", "off"):
            continue
        for real in service.reals:
            grouped.setdefault(service.check_identity(real), []).append((service, real))
    return [
        CheckTarget(CheckIdent(ident), members[0][0], members[0][1],
                    tuple((s.key, r.key) for s, r in members))
        for ident, members in grouped.items()
    ]


def phase(ident: Hashable) -> float:
    """A fixed fraction in [0, 1) per check, spreading checks over their interval."""
    return (hash(ident) & 0xFFFF) / 0x10000


class CheckSchedule:
    """Pure timing of periodic checks: due times in, due checks and deadlines out."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}
        self._interval: dict[Hashable, float] = {}
        self._running: set[Hashable] = set()
        self._phased: set[Hashable] = set()
        self._order = itertools.count()

    def __contains__(self, ident: Hashable) -> bool:
        return ident in self._interval

    def add(self, ident: Hashable, interval: float, due: float) -> None:
        self._interval[ident] = interval
        self._set_due(ident, due)

    def set_interval(self, ident: Hashable, interval: float) -> None:
        self._interval[ident] = interval

    def remove(self, ident: Hashable) -> None:
        self._phased.discard(ident)
        self._interval.pop(ident, None)
        self._due.pop(ident, None)
        self._running.discard(ident)

    def _set_due(self, ident: Hashable, due: float) -> None:
        self._due[ident] = due
        heapq.heappush(self._heap, (due, next(self._order), ident))

    def next_deadline(self) -> float | None:
        while self._heap:
            due, _, ident = self._heap[0]
            if self._due.get(ident) == due and ident not in self._running:
                return due
            heapq.heappop(self._heap)  # stale entry
        return None

    def take_due(self, now: float, limit: int | None = None) -> list[Hashable]:
        """Checks due at `now`, marked running (at most `limit`)."""
        taken: list[Hashable] = []
        while self._heap and (limit is None or len(taken) < limit):
            due, _, ident = self._heap[0]
            if due > now:
                break
            heapq.heappop(self._heap)
            if self._due.get(ident) != due or ident in self._running:
                continue
            self._running.add(ident)
            taken.append(ident)
        return taken

    def finished(self, ident: Hashable, started: float, now: float) -> float | None:
        """A check ended: it runs again one interval after it was due (or started),
        keeping the rate steady; a late one runs at once but never in a burst."""
        self._running.discard(ident)
        interval = self._interval.get(ident)
        if interval is None:
            return None
        due = self._due.get(ident, started) + interval
        if ident not in self._phased:
            # After the first check (run at once: no traffic before it passes), spread
            # the checks over the interval so they run as a steady stream, not in bursts.
            # The second comes sooner than an interval, never later: the time between
            # two checks of a server never exceeds the interval.
            self._phased.add(ident)
            due -= interval * (1.0 - phase(ident))
        if due < now:
            due = now
        self._set_due(ident, due)
        return due

    def run_now(self, ident: Hashable, now: float) -> None:
        if ident in self._interval and ident not in self._running:
            self._set_due(ident, now)

    def running(self) -> int:
        return len(self._running)


ResultCallback = Callable[[CheckTarget, CheckResult], None]


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class CheckEngine:
    """Runs every target's check periodically in one asyncio loop."""

    def __init__(
        self,
        on_result: ResultCallback,
        clock: Clock | None = None,
        concurrency: int = 1000,
        tick: float = 0.01,
    ):
        self.on_result = on_result
        self.clock = clock or MonotonicClock()
        self.concurrency = concurrency
        self.tick = tick
        self.schedule = CheckSchedule()
        self.targets: dict[Hashable, CheckTarget] = {}
        self._connects: dict[Hashable, int] = {}
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._sleeping_until = -math.inf
        self._saturated = False
        self._prober: ConnectProber | None = None
        self._probes = 0
        #: checks never leave from a virtual address (a DR real server would answer itself)
        self.sources = SourceChooser(self.clock)
        self.checks_run = 0
        #: (target, result, seconds the check took) of every finished check (metrics)
        self.on_timing: Callable[[CheckTarget, CheckResult, float], None] | None = None

    # -- configuration -------------------------------------------------------------------
    def set_targets(self, targets: Iterable[CheckTarget]) -> None:
        """Replace the set of checks: kept ones keep their timing, new ones run now."""
        now = self.clock.now()
        new = {t.ident: t for t in targets}
        for ident in list(self.targets):
            if ident not in new:
                self.schedule.remove(ident)
                self.targets.pop(ident)
                self._connects.pop(ident, None)
                task = self._tasks.pop(ident, None)
                if task is not None:
                    task.cancel()
        for ident, target in new.items():
            if ident in self.targets:
                self.schedule.set_interval(ident, target.interval)
            else:
                self.schedule.add(ident, target.interval, now)
            self.targets[ident] = target
        self.sources.set_virtuals(t.config.key.address for t in self.targets.values())
        self._wake()

    def check_now(self, ident: Hashable) -> None:
        self.schedule.run_now(ident, self.clock.now())
        self._wake()

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = self.clock.now()
                free = self.concurrency - len(self._tasks) - self._probes // 4
                if free > 0:
                    for ident in self.schedule.take_due(now, free):
                        self._start(ident, now)
                deadline = self.schedule.next_deadline()
                busy = len(self._tasks) + self._probes // 4
                self._saturated = busy >= self.concurrency
                if deadline is None or self._saturated:
                    until = now + 1.0 if busy else math.inf
                else:
                    # Batch what falls due within a tick: one wake-up per ~100 checks
                    # at 10,000 a second instead of one per check.
                    until = max(deadline, now + self.tick)
                if until <= self.clock.now():
                    await asyncio.sleep(0)
                    continue
                await self._sleep(loop, until)
        finally:
            if self._prober is not None:
                self._prober.cancel_all()
                self._probes = 0
            for task in self._tasks.values():
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks.clear()

    async def _sleep(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        """Sleep until `until` (clock time) or a wake-up, whichever comes first."""
        waiter = loop.create_future()
        self._waiter = waiter
        self._sleeping_until = until
        handle = None
        if until != math.inf:
            handle = loop.call_later(max(0.0, until - self.clock.now()), _release, waiter)
        try:
            await waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._waiter = None
            self._sleeping_until = -math.inf

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finished(self, ident: Hashable, started: float) -> None:
        """Book a finished check; wake the loop only if it now has something to do."""
        if ident in self.targets:
            due = self.schedule.finished(ident, started, self.clock.now())
            if self._saturated or (due is not None and due < self._sleeping_until):
                self._wake()
        elif self._saturated:
            self._wake()

    def _start(self, ident: Hashable, now: float) -> None:
        target = self.targets[ident]
        if target.plain_connect:
            self._probe(ident, target, now)
            return
        self._tasks[ident] = asyncio.get_running_loop().create_task(
            self._run_one(ident, target, now))

    def _probe(self, ident: Hashable, target: CheckTarget, started: float) -> None:
        """The fast path: a plain TCP connect check without a task."""
        if self._prober is None:
            self._prober = ConnectProber(asyncio.get_running_loop())
        self._probes += 1
        real = target.real

        def done(result: CheckResult) -> None:
            self._probes -= 1
            self._finished(ident, started)
            self.checks_run += 1
            if self.on_timing is not None:
                self.on_timing(target, result, self.clock.now() - started)
            if self.targets.get(ident) is target:
                self.on_result(target, result)

        # A probe costs a socket and a timer, no task: four count as one slot.
        self._prober.start(real.real.address, target.config.check_port(real),
                           target.config.check.checktimeout, done,
                           self.sources.source_for(real.real.address))

    async def _run_one(self, ident: Hashable, target: CheckTarget, started: float) -> None:
        try:
            result = await self.check_once(ident, target)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a checker must not stop the engine
            log.exception("check.crashed real=%s", target.real.key)
            result = CheckResult.down(f"check failed: {exc}")
        finally:
            self._tasks.pop(ident, None)
            self._finished(ident, started)
        self.checks_run += 1
        if self.on_timing is not None:
            self.on_timing(target, result, self.clock.now() - started)
        if self.targets.get(ident) is target:
            self.on_result(target, result)

    async def check_once(self, ident: Hashable, target: CheckTarget) -> CheckResult:
        spec = target.config.check
        negotiate = spec.checktype == "negotiate"
        checktype = spec.checktype
        if checktype == "combined":
            negotiate = self._connects.get(ident, 0) >= spec.connect_count
            checktype = "negotiate" if negotiate else "connect"
        check = checker_for(checktype, spec.service)
        request = target.request(negotiate, self.sources.source_for(target.real.real.address))
        result = CheckResult.down("not run")
        for _ in range(max(1, spec.checkcount)):
            try:
                async with asyncio.timeout(request.timeout):
                    result = await check(request)
            except TimeoutError:
                result = CheckResult.down(f"timed out after {request.timeout:g} s")
            if result.ok:
                break
        if spec.checktype == "combined":
            if negotiate:
                self._connects[ident] = 0 if result.ok else spec.connect_count
            else:
                self._connects[ident] = (self._connects.get(ident, 0) + 1 if result.ok
                                         else spec.connect_count)
        return result
