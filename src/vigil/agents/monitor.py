"""Monitoring: notice a dead service, restart it in place, and give up after K restarts.

Heartbeat v1 never looks at its resources (the seed: killing mysqld "has no
effect"). vigil monitors each resource at its interval. `RestartPolicy` is
the pure decision: a failure within the limit (K restarts within a window)
means restart in place; one more means the group has failed and must move to
the peer. A resource that an administrator stopped on purpose is never a
failure. `GroupMonitor` is the thin asyncio loop around it.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vigil.agents.base import AgentResult, OcfStatus
from vigil.agents.group import Group, GroupResult
from vigil.clock import Clock, MonotonicClock
from vigil.log import event

log = logging.getLogger("vigil.agents.monitor")


class Verdict(enum.Enum):
    HEALTHY = "healthy"
    IGNORED = "ignored"  # stopped on purpose by an administrator
    RESTART = "restart"
    FAIL_GROUP = "fail-group"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    resource: str
    reason: str
    at: float = 0.0


@dataclass
class RestartPolicy:
    """Restart a failed resource up to `limit` times within `window` seconds (pure)."""

    limit: int = 3
    window: float = 300.0
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def observe(self, resource: str, result: AgentResult, now: float,
                stopped_on_purpose: bool = False, *, limit: int | None = None,
                window: float | None = None, on_failure: str = "restart") -> Decision:
        """`limit`/`window` override the policy's for this resource; `on_failure` is
        vigil.cf's on_monitor_failure (restart, failover or ignore)."""
        if result.ok:
            return Decision(Verdict.HEALTHY, resource, "running", now)
        if stopped_on_purpose:
            return Decision(Verdict.IGNORED, resource,
                            f"{resource} is stopped on purpose (administrator), not a failure", now)
        what = f"{result.status.name}: {result.message}"
        if on_failure == "ignore":
            return Decision(Verdict.IGNORED, resource,
                            f"{resource} failed ({what}): on_monitor_failure ignore", now)
        if on_failure == "failover":
            return Decision(Verdict.FAIL_GROUP, resource,
                            f"{resource} failed ({what}): on_monitor_failure failover moves "
                            "the group to the peer", now)
        return self.failure(resource, what, now, limit=limit, window=window)

    def failure(self, resource: str, what: str, now: float, *, limit: int | None = None,
                window: float | None = None) -> Decision:
        limit = self.limit if limit is None else limit
        window = self.window if window is None else window
        recent = self.failures.setdefault(resource, deque())
        while recent and recent[0] <= now - window:
            recent.popleft()
        recent.append(now)
        count = len(recent)
        if count > limit:
            return Decision(Verdict.FAIL_GROUP, resource,
                            f"{resource} failed ({what}) {count} times within "
                            f"{window:g} s, more than the {limit} restarts allowed: "
                            "the group has failed and must move to the peer", now)
        return Decision(Verdict.RESTART, resource,
                        f"{resource} failed ({what}): restart {count} of {limit} "
                        f"within {window:g} s", now)

    def forget(self, resource: str | None = None) -> None:
        if resource is None:
            self.failures.clear()
        else:
            self.failures.pop(resource, None)


class AdminMarks:
    """Resources an administrator stopped through vigil, kept as files under /run.

    Files under /run, so that `vigil resource stop X` in one process is seen by
    the monitor in another (the daemon), whether or not the daemon runs yet, and
    forgotten at the next boot.
    """

    def __init__(self, state_dir: Path):
        self.directory = state_dir / "stopped"

    def _path(self, label: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:80]
        return self.directory / f"{safe}-{hashlib.sha1(label.encode()).hexdigest()[:8]}"

    def mark(self, label: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path(label).write_text(label + "\n")

    def clear(self, label: str) -> None:
        self._path(label).unlink(missing_ok=True)

    def marked(self, label: str) -> bool:
        return self._path(label).exists()


class GroupMonitor:
    """Run monitor operations at each resource's interval; restart or give up.

    `run()` returns the FAIL_GROUP decision when the group has failed (the
    caller stops it and lets the peer take over), or runs until cancelled.
    """

    def __init__(self, group: Group, clock: Clock | None = None,
                 marks: AdminMarks | None = None,
                 on_decision: Callable[[Decision], None] | None = None,
                 on_restart: Callable[[str, GroupResult, float], None] | None = None):
        self.group = group
        self.options = group.options
        self.clock = clock or MonotonicClock()
        self.marks = marks
        self.policy = RestartPolicy(self.options.restart_limit, self.options.restart_window)
        self.on_decision = on_decision
        self.on_restart = on_restart
        self.held: set[str] = set()  # stopped on purpose, in this process
        self.restarts: list[GroupResult] = []

    def hold(self, label: str) -> None:
        """An administrator stops this resource: its absence is not a failure."""
        self.held.add(label)

    def release(self, label: str) -> None:
        self.held.discard(label)
        self.policy.forget(label)

    def _on_purpose(self, label: str) -> bool:
        return label in self.held or (self.marks is not None and self.marks.marked(label))

    def _emit(self, decision: Decision) -> None:
        if decision.verdict is not Verdict.HEALTHY:
            level = logging.CRITICAL if decision.verdict is Verdict.FAIL_GROUP else \
                logging.WARNING if decision.verdict is Verdict.RESTART else logging.INFO
            event(log, f"monitor.{decision.verdict.value}", level=level,
                  group=self.group.name, resource=decision.resource, reason=decision.reason)
        if self.on_decision is not None:
            self.on_decision(decision)

    async def check(self, label: str) -> Decision:
        """One monitor operation of one resource, and what follows from it."""
        agent = self.group.agents[self.group.index(label)]
        result = await agent.monitor(self.options.timeout_for(agent, "monitor"))
        options = self.options
        limit = int(options.setting(agent, "restart_limit", options.restart_limit))
        window = float(options.setting(agent, "restart_window", options.restart_window))
        decision = self.policy.observe(
            label, result, self.clock.now(), self._on_purpose(label), limit=limit,
            window=window, on_failure=options.setting(agent, "on_monitor_failure",
                                                      options.on_monitor_failure))
        self._emit(decision)
        if decision.verdict is not Verdict.RESTART:
            return decision
        began = self.clock.now()
        restart = await self.group.restart_from(label)
        self.restarts.append(restart)
        if self.on_restart is not None:
            self.on_restart(label, restart, self.clock.now() - began)
        if restart.blocked:
            decision = Decision(Verdict.FAIL_GROUP, label,
                                f"restart of {label} blocked: {restart.reason}", self.clock.now())
            self._emit(decision)
        elif not restart.ok:
            # The start failed: that is one more failure against the same limit.
            decision = self.policy.failure(label, f"restart failed: {restart.reason}",
                                           self.clock.now(), limit=limit, window=window)
            self._emit(decision)
        else:
            event(log, "monitor.restarted", group=self.group.name, resource=label)
        return decision

    async def run(self) -> Decision:
        loop = asyncio.get_running_loop()
        due = {agent.label: loop.time() + self.options.interval_for(agent)
               for agent in self.group.agents if self.options.monitored(agent)}
        if not due:  # `monitor off` for every resource: nothing to watch until cancelled
            await asyncio.Event().wait()
        while True:
            label = min(due, key=due.__getitem__)
            delay = due[label] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            decision = await self.check(label)
            if decision.verdict is Verdict.FAIL_GROUP:
                return decision
            agent = self.group.agents[self.group.index(label)]
            due[label] = loop.time() + self.options.interval_for(agent)


def failed_result(decision: Decision) -> AgentResult:
    return AgentResult(OcfStatus.ERR_GENERIC, decision.reason)
