"""ldirectord: the load balancer as a resource, through `vigil director start|stop|status`.

heartbeat's `ldirectord[::CONFIG]` (CONFIG relative to /etc/ha.d, default
ldirectord.cf). vigil's director replaces the Perl daemon; this agent runs
it the way heartbeat ran ldirectord, as a subprocess with LSB exit codes.

When a warm standby director runs on this node (`vigil director standby`, the
`vigil-director-standby@` unit), start and stop only flip its role, in-process
over its control socket: no interpreter start-up and no cold start between the
VIP and a director that forwards. `status` says stopped on a standby.
"""

from __future__ import annotations

import os

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions
from vigil.agents.script import read_heartbeat_status, result_of, run_agent_program
from vigil.errors import VigilError

#: `vigil director --metrics-address`'s default (docs/metrics.md)
METRICS_VARIABLE = "VIGIL_DIRECTOR_METRICS_ADDRESS"


class Ldirectord(Agent):
    default_interval = 10.0
    default_timeout = 30.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        if len(args) > 1:
            raise AgentConfigError("ldirectord takes at most one argument: its config file",
                                   OcfStatus.ERR_ARGS)
        self.config = args[0] if args else None

    def _argv(self, verb: str) -> list[str]:
        argv = [*self.options.vigil_command, "director", verb]
        if self.config:
            argv.append(self.config)
        return argv

    @staticmethod
    def _env() -> dict[str, str]:
        """Agent programs get a clean environment; the director's metrics address is the
        one setting of the heartbeat daemon's environment a director started here keeps."""
        address = os.environ.get(METRICS_VARIABLE)
        return {METRICS_VARIABLE: address} if address else {}

    async def _run(self, verb: str, timeout: float) -> AgentResult:
        program = await run_agent_program(self._argv(verb), timeout, self.label, verb,
                                          env=self._env())
        if verb == "status":
            return read_heartbeat_status(program, timeout)
        return result_of(program, verb, timeout)

    def _instance(self) -> str:
        from vigil.director import adapter, daemon

        return daemon.instance_name(adapter.find_config(self.config).resolve())

    async def _flip(self, verb: str, timeout: float) -> AgentResult | None:
        """Activate (start) or deactivate (stop) a warm standby in place; None when
        the node's director is not one (the program then does the whole job)."""
        import asyncio

        from vigil.director import control, daemon
        from vigil.director.role import Step, step_for

        instance = self._instance()
        step = step_for(verb, daemon.read_state(instance))
        if step not in (Step.ACTIVATE, Step.DEACTIVATE):
            return None
        command = "activate" if step is Step.ACTIVATE else "deactivate"
        try:
            await asyncio.to_thread(control.request, instance, {"command": command}, timeout)
        except VigilError as exc:
            return AgentResult(OcfStatus.ERR_GENERIC, f"vigil director {instance}: {exc}")
        return AgentResult(OcfStatus.SUCCESS, f"vigil director {instance} "
                           + ("is active" if command == "activate" else "is a warm standby"))

    async def start(self, timeout: float) -> AgentResult:
        return await self._flip("start", timeout) or await self._run("start", timeout)

    async def stop(self, timeout: float) -> AgentResult:
        return await self._flip("stop", timeout) or await self._run("stop", timeout)

    async def status(self, timeout: float) -> AgentResult:
        """What `vigil director status` answers, read here: its pid file and process.

        In-process, because a group's start asks for the status first: a second
        interpreter start-up would sit between the VIP and the director's table
        on every takeover (and every monitor round would pay one).
        """
        from vigil.director import daemon
        from vigil.director.role import Role

        instance = self._instance()
        current = daemon.read_state(instance)
        if current.role is Role.ACTIVE:
            pid = daemon.pid_file(instance).running_pid()
            return AgentResult(OcfStatus.SUCCESS, f"vigil director {instance} is running "
                               f"with pid {pid}")
        if current.role is Role.STANDBY:
            return AgentResult(OcfStatus.NOT_RUNNING,
                               f"vigil director {instance} is not running as the active "
                               "director: a warm standby")
        return AgentResult(OcfStatus.NOT_RUNNING, f"vigil director {instance} is stopped")
