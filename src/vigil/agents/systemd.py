"""systemd units: `systemd:UNIT`, only where systemd is PID 1.

Elsewhere (containers, lab hosts, sysvinit machines) every operation reports
ERR_INSTALLED with a clear message instead of failing in obscure ways.
"""

from __future__ import annotations

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.script import result_of, run_agent_program


class SystemdUnit(Agent):
    default_interval = 15.0
    default_timeout = 100.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        self.paths = paths or AgentPaths()
        unit = name.removeprefix("systemd:")
        if not unit or "/" in unit or args:
            raise AgentConfigError(f"{name}: a systemd resource is written systemd:UNIT",
                                   OcfStatus.ERR_CONFIGURED)
        self.unit = unit if "." in unit else f"{unit}.service"

    def systemd_running(self) -> bool:
        """sd_booted(): the marker directory exists only when systemd is PID 1."""
        return self.paths.systemd_marker.is_dir()

    def _absent(self) -> AgentResult:
        return AgentResult(OcfStatus.ERR_INSTALLED,
                           f"{self.unit}: systemd is not running on this node (PID 1 is "
                           "another init): use an LSB script or an OCF agent instead")

    async def _systemctl(self, verb: str, timeout: float) -> AgentResult:
        if not self.systemd_running():
            return self._absent()
        program = await run_agent_program(["systemctl", verb, self.unit], timeout,
                                          self.label, verb)
        return result_of(program, verb, timeout)

    async def start(self, timeout: float) -> AgentResult:
        return await self._systemctl("start", timeout)

    async def stop(self, timeout: float) -> AgentResult:
        return await self._systemctl("stop", timeout)

    async def status(self, timeout: float) -> AgentResult:
        if not self.systemd_running():
            return self._absent()
        program = await run_agent_program(["systemctl", "is-active", "--quiet", self.unit],
                                          timeout, self.label, "status")
        if program.timed_out:
            return AgentResult(OcfStatus.ERR_GENERIC, "systemctl is-active timed out")
        if program.returncode == 0:
            return AgentResult(OcfStatus.SUCCESS, f"{self.unit} is active")
        if program.returncode == 3:
            return AgentResult(OcfStatus.NOT_RUNNING, f"{self.unit} is not active")
        return AgentResult(OcfStatus.ERR_GENERIC,
                           f"systemctl is-active {self.unit} exited {program.returncode}")
