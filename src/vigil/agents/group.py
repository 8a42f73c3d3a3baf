"""Resource groups: what fails over together, started left to right, stopped right to left.

One haresources line is one group (`server5 IPaddr::... drbddisk::r0
Filesystem::... mysqld`), keyed by its first resource as heartbeat does.

Start: each resource already held is left alone (heartbeat's
`we_own_resource || start`); the first that fails to start makes the group
stop everything again in reverse, and the result says the group failed so the
cluster can hand it to the peer.

Stop: each stop that fails is retried (heartbeat: 10 times, 1 s apart). If it
still fails and the resource's status does not say "stopped", the group is
*not released*: stopping stops there (the resources it depends on stay up),
the result is `blocked`, and the configured policy says what the node must do
(block and alarm by default, or reboot as heartbeat does). A group is never
reported released while any of its resources may still run.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from vigil.agents.base import Agent, AgentResult, OcfStatus
from vigil.agents.factory import build_agent
from vigil.agents.options import AgentOptions, AgentPaths, StopFailurePolicy
from vigil.log import event

log = logging.getLogger("vigil.agents.group")

Sleep = Callable[[float], Awaitable[None]]


class Holding(enum.Enum):
    """heartbeat's StatGroup: how much of a group this node holds."""

    NONE = "none"
    SOME = "some"
    ALL = "all"


@dataclass(frozen=True)
class Step:
    resource: str
    operation: str
    result: AgentResult

    def __str__(self) -> str:
        return f"{self.operation} {self.resource}: {self.result.status.name} {self.result.message}"


@dataclass(frozen=True)
class GroupResult:
    """What a start or stop of a whole group did, and what the caller must do about it."""

    group: str
    operation: str
    ok: bool
    reason: str
    steps: tuple[Step, ...] = ()
    #: stop (or a failed start's rollback) left nothing running: the peer may take over.
    released: bool = False
    #: a resource would not stop and may still run: the group must not go to the peer.
    blocked: bool = False
    #: with `blocked`: what the node must do now (block and alarm, or reboot).
    policy: StopFailurePolicy | None = None


@dataclass(frozen=True)
class GroupStatus:
    group: str
    holding: Holding
    resources: tuple[tuple[str, AgentResult], ...] = field(default_factory=tuple)


class Group:
    """Agents in haresources order; operations run one resource at a time."""

    def __init__(self, name: str, agents: Sequence[Agent], options: AgentOptions | None = None,
                 sleep: Sleep = asyncio.sleep):
        if not agents:
            raise ValueError("a group needs at least one resource")
        self.name = name
        self.agents = list(agents)
        self.options = options or AgentOptions()
        self._sleep = sleep

    @classmethod
    def from_resources(cls, resources: Iterable[tuple[str, Sequence[str]]],
                       options: AgentOptions | None = None, paths: AgentPaths | None = None,
                       name: str | None = None) -> Group:
        """A group from (name, args) pairs; named, like heartbeat's, by its first resource."""
        options = options or AgentOptions()
        agents = [build_agent(n, tuple(a), options=options, paths=paths) for n, a in resources]
        return cls(name or (agents[0].label if agents else ""), agents, options)

    def index(self, label: str) -> int:
        for number, agent in enumerate(self.agents):
            if label in (agent.label, agent.name):
                return number
        raise KeyError(f"group {self.name} has no resource {label}")

    # -- start ------------------------------------------------------------------------------
    async def start(self) -> GroupResult:
        return await self._start_from(0, "start")

    async def _start_from(self, first: int, operation: str) -> GroupResult:
        steps: list[Step] = []
        for number in range(first, len(self.agents)):
            agent = self.agents[number]
            held = await agent.status(self.options.timeout_for(agent, "status"))
            if held.ok:
                steps.append(Step(agent.label, "status", held))
                continue
            result = await agent.start(self.options.timeout_for(agent, "start"))
            steps.append(Step(agent.label, "start", result))
            event(log, "resource.start", level=logging.INFO if result.ok else logging.ERROR,
                  group=self.name, resource=agent.label, status=result.status.name,
                  said=result.message)
            if not result.ok:
                rollback = await self._stop_range(range(number, -1, -1) if first == 0
                                                  else range(number, first - 1, -1))
                steps.extend(rollback.steps)
                reason = (f"{agent.label} failed to start ({result.status.name}: "
                          f"{result.message}); ")
                if rollback.blocked:
                    reason += f"rollback blocked: {rollback.reason}"
                else:
                    reason += "group stopped again, it may go to the peer"
                event(log, "group.start_failed", level=logging.CRITICAL, group=self.name,
                      reason=reason)
                return GroupResult(self.name, operation, False, reason, tuple(steps),
                                   released=not rollback.blocked and first == 0,
                                   blocked=rollback.blocked, policy=rollback.policy)
        event(log, "group.started", group=self.name, resources=len(self.agents))
        return GroupResult(self.name, operation, True, f"group {self.name} running",
                           tuple(steps))

    # -- stop -----------------------------------------------------------------------------------
    async def stop(self) -> GroupResult:
        result = await self._stop_range(range(len(self.agents) - 1, -1, -1))
        if result.released:
            event(log, "group.released", group=self.name)
        return result

    async def stop_one(self, agent: Agent) -> tuple[AgentResult, bool]:
        """Stop with heartbeat's retries; (last result, whether it is known stopped)."""
        timeout = self.options.timeout_for(agent, "stop")
        result = await agent.stop(timeout)
        retries = 0
        allowed = self.options.stop_retries_for(agent)
        while not result.ok and retries < allowed:
            retries += 1
            event(log, "resource.stop_retry", level=logging.WARNING, group=self.name,
                  resource=agent.label, attempt=retries, said=result.message)
            await self._sleep(self.options.stop_retry_delay)
            result = await agent.stop(timeout)
        if result.ok:
            return result, True
        status = await agent.status(self.options.timeout_for(agent, "status"))
        if status.status is OcfStatus.NOT_RUNNING:
            event(log, "resource.stop_not_lsb", level=logging.WARNING, resource=agent.label,
                  said=f"stop failed but status says stopped: {status.message}")
            return result, True
        return result, False

    async def _stop_range(self, numbers: Iterable[int]) -> GroupResult:
        steps: list[Step] = []
        for number in numbers:
            agent = self.agents[number]
            result, stopped = await self.stop_one(agent)
            steps.append(Step(agent.label, "stop", result))
            event(log, "resource.stop", level=logging.INFO if stopped else logging.CRITICAL,
                  group=self.name, resource=agent.label, status=result.status.name,
                  said=result.message)
            if not stopped:
                policy = self.options.stop_failure_for(agent)
                reason = (f"{agent.label} would not stop ({result.message}) and may still run: "
                          f"group {self.name} is NOT released (policy {policy.value})")
                event(log, "group.stop_failed", level=logging.CRITICAL, group=self.name,
                      resource=agent.label, policy=policy.value, reason=reason)
                return GroupResult(self.name, "stop", False, reason, tuple(steps),
                                   released=False, blocked=True, policy=policy)
        return GroupResult(self.name, "stop", True, f"group {self.name} released", tuple(steps),
                           released=True)

    # -- restart in place (monitoring) -------------------------------------------------------------
    async def restart_from(self, label: str) -> GroupResult:
        """Restart a failed resource: stop it and those right of it, then start them again."""
        first = self.index(label)
        stopped = await self._stop_range(range(len(self.agents) - 1, first - 1, -1))
        if stopped.blocked:
            return GroupResult(self.name, "restart", False, stopped.reason, stopped.steps,
                               blocked=True, policy=stopped.policy)
        started = await self._start_from(first, "restart")
        return GroupResult(self.name, "restart", started.ok, started.reason,
                           stopped.steps + started.steps, blocked=started.blocked,
                           policy=started.policy)

    # -- status -----------------------------------------------------------------------------------
    async def status(self) -> GroupStatus:
        results = []
        for agent in self.agents:
            results.append((agent.label,
                            await agent.status(self.options.timeout_for(agent, "status"))))
        held = [r.ok or r.status is not OcfStatus.NOT_RUNNING for _, r in results]
        holding = Holding.ALL if all(held) else Holding.SOME if any(held) else Holding.NONE
        return GroupStatus(self.name, holding, tuple(results))

    async def announce(self) -> list[Step]:
        """Ask every agent that can to re-announce (gratuitous ARP after a healed partition)."""
        return await self._each_that_can("announce")

    async def handoff(self) -> list[Step]:
        """After a stop that leaves the group to the peer: announce its addresses there."""
        return await self._each_that_can("handoff")

    async def holders_elsewhere(self) -> list[Step]:
        """Ask of a group running here whether another host holds its resources too."""
        return await self._each_that_can("holder_elsewhere")

    async def _each_that_can(self, operation: str) -> list[Step]:
        """Run `operation` on every agent; those that do not implement it are left out."""
        steps = []
        for agent in self.agents:
            result = await getattr(agent, operation)(self.options.timeout_for(agent, "status"))
            if result.status is not OcfStatus.ERR_UNIMPLEMENTED:
                steps.append(Step(agent.label, operation, result))
        return steps

    async def settle(self) -> None:
        for agent in self.agents:
            await agent.settle()
