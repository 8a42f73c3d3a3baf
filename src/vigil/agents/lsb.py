"""LSB and heartbeat scripts: `/etc/ha.d/resource.d/NAME`, then `/etc/init.d/NAME`.

Run as heartbeat does: `script arg1 arg2 ... start|stop|status`. Start and
stop use the exit code; status is read as heartbeat reads it (see
`read_heartbeat_status`). Monitor is status: an LSB script knows no more.
"""

from __future__ import annotations

import os
from pathlib import Path

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.script import read_heartbeat_status, result_of, run_agent_program


def find_script(name: str, directories: tuple[Path, ...]) -> Path | None:
    """heartbeat's scriptpath: the first executable regular file of that name."""
    if "/" in name or name in ("", ".", ".."):
        return None
    for directory in directories:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class LsbScript(Agent):
    default_interval = 15.0
    default_timeout = 60.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None,
                 script: Path | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        paths = paths or AgentPaths()
        found = script or find_script(name.removeprefix("lsb:"), paths.script_dirs)
        if found is None:
            where = ", ".join(str(d) for d in paths.script_dirs)
            raise AgentConfigError(f"cannot locate resource script {name} (looked in {where})",
                                   OcfStatus.ERR_INSTALLED)
        self.script = found

    async def _run(self, operation: str, timeout: float) -> AgentResult:
        program = await run_agent_program([str(self.script), *self.args, operation], timeout,
                                          self.label, operation)
        if operation == "status":
            return read_heartbeat_status(program, timeout)
        return result_of(program, operation, timeout)

    async def start(self, timeout: float) -> AgentResult:
        return await self._run("start", timeout)

    async def stop(self, timeout: float) -> AgentResult:
        return await self._run("stop", timeout)

    async def status(self, timeout: float) -> AgentResult:
        return await self._run("status", timeout)
