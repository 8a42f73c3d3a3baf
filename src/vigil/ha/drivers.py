"""Which `GroupDriver` runs the groups: a registry, one entry per driver.

`agents` is the resource-agents layer (`vigil.agents.group.Group`: IPaddr,
Filesystem, drbddisk, LSB, OCF and systemd resources, with vigil.cf's
options); `test` is the heartbeat daemon's own test driver
(`vigil.ha.testdriver`). `auto` is `agents`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from vigil.errors import UsageError
from vigil.ha.groups import Group, GroupDriver
from vigil.log import event

if TYPE_CHECKING:
    from vigil.agents.group import Group as AgentGroup
    from vigil.agents.group import GroupResult
    from vigil.agents.options import AgentOptions, AgentPaths
    from vigil.ha.settings import HeartbeatSettings

log = logging.getLogger("vigil.ha.drivers")

#: how long one resource may take to say whether it could start here
UNREADY_TIMEOUT = 2.0


class AgentsGroupDriver:
    """`GroupDriver` over `vigil.agents.group.Group` (the resource-agents layer)."""

    name = "agents"

    def __init__(self, options: AgentOptions | None = None, paths: AgentPaths | None = None):
        self.options = options
        self.paths = paths
        self._groups: dict[int, AgentGroup] = {}
        #: (group, resource, verdict) of every monitor operation (metrics)
        self.on_verdict: Callable[[str, str, str], None] | None = None
        #: (group, resource, ok) of every in-place restart (metrics)
        self.on_restart: Callable[[str, str, bool], None] | None = None
        #: failed_stop reboot: reboots the node (the daemon's SelfReboot)
        self.on_reboot: Callable[[str], Awaitable[None]] | None = None

    def reconfigure(self, options: AgentOptions) -> None:
        """vigil.cf reloaded: every group and resource uses the new options from now on
        (timeouts, ARP counts, stop retries; a monitor loop picks them up at its next
        restart of the group's monitoring)."""
        self.options = options
        for runtime in self._groups.values():
            runtime.options = options
            for agent in runtime.agents:
                if hasattr(agent, "options"):
                    agent.options = options

    def runtime(self, group: Group) -> AgentGroup:
        from vigil.agents.factory import parse_resource
        from vigil.agents.group import Group as AgentGroup

        found = self._groups.get(group.index)
        if found is None:
            resources = ([(ref.name, ref.args) for ref in group.refs] if group.refs
                         else [parse_resource(label) for label in group.resources])
            found = AgentGroup.from_resources(resources,
                                              options=self.options, paths=self.paths,
                                              name=group.key)
            self._groups[group.index] = found
        return found

    async def start(self, group: Group) -> bool:
        result = await self.runtime(group).start()
        if not result.ok:
            event(log, "group.start_failed", logging.ERROR, group=group.key,
                  reason=result.reason)
            await self._reboot_if_asked(group, result)
        return bool(result.ok)

    async def stop(self, group: Group) -> bool:
        result = await self.runtime(group).stop()
        if not result.released:
            event(log, "group.not_released", logging.CRITICAL, group=group.key,
                  reason=result.reason)
            await self._reboot_if_asked(group, result)
        return bool(result.released)

    async def _reboot_if_asked(self, group: Group, result: GroupResult) -> None:
        """failed_stop reboot: a resource that will not stop reboots the node (heartbeat's
        "Resource STOP failure. Reboot required!"), so the peer may take over safely."""
        from vigil.agents.options import StopFailurePolicy

        if result.blocked and result.policy is StopFailurePolicy.REBOOT \
                and self.on_reboot is not None:
            await self.on_reboot(result.reason)

    async def unready(self, group: Group) -> str | None:
        """Why the group could not start here now, or None (see `Agent.unready`)."""
        runtime = self.runtime(group)
        for agent in runtime.agents:
            why = await agent.unready(UNREADY_TIMEOUT)
            if why is not None:
                return why
        return None

    async def held(self, group: Group) -> bool:
        from vigil.agents.group import Holding

        status = await self.runtime(group).status()
        return bool(status.holding is not Holding.NONE)

    async def announce(self, group: Group) -> None:
        await self.runtime(group).announce()

    async def handoff(self, group: Group) -> None:
        for step in await self.runtime(group).handoff():
            event(log, "group.handoff", group=group.key, resource=step.resource,
                  status=step.result.status.name, said=step.result.message)

    async def answered_elsewhere(self, group: Group) -> bool:
        """Whether another host answers for a resource of this group running here."""
        from vigil.agents.base import OcfStatus

        answered = False
        for step in await self.runtime(group).holders_elsewhere():
            event(log, "group.holder_probed", group=group.key, resource=step.resource,
                  status=step.result.status.name, said=step.result.message)
            answered = answered or step.result.status is OcfStatus.SUCCESS
        return answered

    async def monitor(self, group: Group) -> str:
        """Monitor every resource at its interval, restart in place, give up after K."""
        from vigil.agents.monitor import AdminMarks, GroupMonitor
        from vigil.agents.options import AgentPaths

        # resources an administrator stopped (`vigil resource stop`) are not failures
        marks = AdminMarks((self.paths or AgentPaths()).state_dir)
        verdict, restart = self.on_verdict, self.on_restart
        monitor = GroupMonitor(
            self.runtime(group), marks=marks,
            on_decision=None if verdict is None else
            lambda d: verdict(group.key, d.resource, d.verdict.value),
            on_restart=None if restart is None else
            lambda label, result, _seconds: restart(group.key, label, result.ok))
        decision = await monitor.run()
        return decision.reason


def _agents(settings: HeartbeatSettings | None) -> GroupDriver:
    from pathlib import Path

    from vigil.agents.options import AgentPaths

    options = None
    source = getattr(settings, "source", None)
    if source is not None:
        from vigil.agents.options import options_from_extension

        options = options_from_extension(source.extension)
    paths = None
    directory = getattr(settings, "directory", None)
    if directory is not None:
        # heartbeat looks for resource scripts in its own configuration directory
        paths = AgentPaths(script_dirs=(Path(directory) / "resource.d", Path("/etc/init.d")))
    return AgentsGroupDriver(options, paths=paths)


def _test(settings: HeartbeatSettings | None) -> GroupDriver:
    from vigil.ha.testdriver import TestGroupDriver

    return TestGroupDriver()


GROUP_DRIVERS: dict[str, Callable[[HeartbeatSettings | None], GroupDriver]] = {
    "agents": _agents,
    "test": _test,
}


def make_driver(name: str = "auto", settings: HeartbeatSettings | None = None) -> GroupDriver:
    factory = GROUP_DRIVERS.get("agents" if name == "auto" else name)
    if factory is None:
        raise UsageError(f"unknown group driver {name!r} (known: auto, "
                         f"{', '.join(GROUP_DRIVERS)})")
    return factory(settings)
