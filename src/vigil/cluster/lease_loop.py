"""The asyncio shell around `vigil.cluster.lease`: store calls in a worker thread,
the group's start and stop as coroutines, the rule asked at every answer and deadline.

Thin on purpose: every decision is the rule's. The shell only records when each
call was sent, reports what came back (or that nothing did), and runs the
group's actions one at a time. A call that hangs does not hold the rule up: its
deadlines (the stop before the lease could lapse) are kept while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from vigil.clock import Clock, MonotonicClock
from vigil.cluster.etcd import EtcdError, EtcdGateway
from vigil.cluster.lease import Act, LeaseHolder, LeaseSettings, Request, Step
from vigil.log import event

log = logging.getLogger("vigil.lease")

Action = Callable[[], Awaitable[None]]


class LeaseLoop:
    """Hold `key` for this node through `gateway`; `start`/`stop` run the group here."""

    def __init__(self, settings: LeaseSettings, node: str, gateway: EtcdGateway, key: str,
                 start: Action, stop: Action, clock: Clock | None = None):
        self.clock = clock or MonotonicClock()
        self.rule = LeaseHolder(settings, node, self.clock.now())
        self.gateway = gateway
        self.key = key
        self.start = start
        self.stop = stop
        self.lease: int | None = None
        self._wake = asyncio.Event()
        self._acting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def run(self) -> None:
        """Until `shutdown`: the group stopped here and the lease revoked on the way out."""
        try:
            while not self._stopping:
                now = self.clock.now()
                self._carry_out(self.rule.step(now))
                wait = max(0.01, self.rule.next_deadline(now) - now)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            await self._leave()

    def poke(self) -> None:
        """Something the rule reads changed (`rule.want`): ask it again now."""
        self._wake.set()

    def shutdown(self) -> None:
        self._stopping = True
        self._wake.set()

    def _carry_out(self, step: Step) -> None:
        if step.request is not None:
            self._spawn(self._call(step.request))
        if step.act is not None and self._acting is None:
            event(log, "lease.act", key=self.key, act=step.act.name.lower(), why=step.why)
            self._acting = self._spawn(self._act(step.act))
            slow = asyncio.get_running_loop().call_later(
                self.rule.settings.ttl, self._still_acting, self._acting, step.act)
            self._acting.add_done_callback(lambda _task: slow.cancel())

    async def _act(self, act: Act) -> None:
        try:
            if act is Act.START:
                await self.start()
                self.rule.started()
            else:
                await self.stop()
                self.rule.stopped()
        except Exception as exc:  # a failed start is stopped again by the rule's next step
            event(log, "lease.act_failed", level=logging.ERROR, key=self.key,
                  act=act.name.lower(), error=f"{type(exc).__name__}: {exc}")
        finally:
            self._acting = None
            self._wake.set()

    def _still_acting(self, acting: asyncio.Task[None], act: Act) -> None:
        """A start or stop still running after a whole TTL: said once, as a warning (a
        stop keeps the lease alive meanwhile, so the group stays here until it ends)."""
        if not acting.done():
            event(log, "lease.act_slow", level=logging.WARNING, key=self.key,
                  act=act.name.lower(), seconds=self.rule.settings.ttl,
                  running=self.rule.running)

    async def _call(self, request: Request) -> None:
        sent = self.clock.now()
        rule, gateway = self.rule, self.gateway
        try:
            if request is Request.GRANT:
                self.lease, ttl = await asyncio.to_thread(gateway.grant,
                                                          round(rule.settings.ttl))
                rule.granted(sent, ttl)
            elif request is Request.ACQUIRE:
                got = await asyncio.to_thread(gateway.acquire, self.key, rule.node,
                                              self._lease())
                rule.acquired(sent, got.ours, got.holder)
                if got.ours:
                    event(log, "lease.acquired", key=self.key, lease=self.lease)
            elif request is Request.REFRESH:
                rule.refreshed(sent, await asyncio.to_thread(gateway.keepalive, self._lease()))
            elif request is Request.LOOK:
                rule.looked(sent, await asyncio.to_thread(gateway.holder, self.key))
            else:
                if self.lease is not None:
                    await asyncio.to_thread(gateway.revoke, self.lease)
                rule.revoked()
        except Exception as exc:  # whatever went wrong, the rule hears that no answer came
            event(log, "lease.call_failed", level=logging.WARNING, key=self.key,
                  call=request.name.lower(), error=f"{type(exc).__name__}: {str(exc)[:300]}")
            rule.failed(request, self.clock.now())
        finally:
            self._wake.set()

    def _lease(self) -> int:
        if self.lease is None:
            raise EtcdError("no lease granted yet")
        return self.lease

    async def _leave(self) -> None:
        """On the way out: wait for an action under way, stop the group, end the lease."""
        if self._acting is not None:
            await asyncio.wait([self._acting])
        if self.rule.running:
            await self._act(Act.STOP)
        if self.lease is not None:
            try:
                await asyncio.to_thread(self.gateway.revoke, self.lease)
            except (EtcdError, OSError) as exc:
                event(log, "lease.call_failed", level=logging.WARNING, key=self.key,
                      call="revoke", error=str(exc)[:300])
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
