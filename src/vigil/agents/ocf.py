"""OCF resource agents: `ocf:PROVIDER:TYPE::key=value::key=value`.

The agent is `$OCF_ROOT/resource.d/PROVIDER/TYPE`, run with the action as its
only argument and its parameters as `OCF_RESKEY_key` in the environment, as
Pacemaker's lrmd does. Status is a probe (`monitor` with interval 0);
monitor is a recurring `monitor` with the configured interval.
"""

from __future__ import annotations

import os
import re

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.script import result_of, run_agent_program

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_ocf_name(name: str) -> tuple[str, str]:
    """`ocf:heartbeat:IPaddr2` -> ("heartbeat", "IPaddr2")."""
    parts = name.split(":")
    if len(parts) != 3 or parts[0] != "ocf" or not all(_NAME.match(p) for p in parts[1:]):
        raise AgentConfigError(f"{name}: an OCF resource is written ocf:PROVIDER:TYPE",
                               OcfStatus.ERR_CONFIGURED)
    return parts[1], parts[2]


def parse_parameters(args: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not _KEY.match(key):
            raise AgentConfigError(f"OCF parameter {arg!r} is not key=value", OcfStatus.ERR_ARGS)
        params[key] = value
    return params


class OcfAgent(Agent):
    default_interval = 10.0
    default_timeout = 20.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        self.paths = paths or AgentPaths()
        self.provider, self.type = parse_ocf_name(name)
        self.parameters = parse_parameters(args)
        self.script = self.paths.ocf_root / "resource.d" / self.provider / self.type
        if not (self.script.is_file() and os.access(self.script, os.X_OK)):
            raise AgentConfigError(f"no OCF agent {self.script}", OcfStatus.ERR_INSTALLED)
        instance = "_".join(f"{v}" for v in self.parameters.values())[:40]
        self.instance = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.type}_{instance}".rstrip("_"))

    def environment(self, operation: str, timeout: float, interval: float = 0.0) -> dict[str, str]:
        env = {
            "OCF_ROOT": str(self.paths.ocf_root),
            "OCF_FUNCTIONS_DIR": str(self.paths.ocf_root / "lib" / "heartbeat"),
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "0",
            "OCF_RESOURCE_INSTANCE": self.instance,
            "OCF_RESOURCE_TYPE": self.type,
            "OCF_RESOURCE_PROVIDER": self.provider,
            "OCF_RESKEY_CRM_meta_timeout": str(int(timeout * 1000)),
            "OCF_RESKEY_CRM_meta_interval": str(int(interval * 1000)),
            "__OCF_ACTION": operation,
        }
        env.update({f"OCF_RESKEY_{k}": v for k, v in self.parameters.items()})
        return env

    async def _run(self, action: str, timeout: float, interval: float = 0.0,
                   label: str | None = None) -> AgentResult:
        program = await run_agent_program(
            [str(self.script), action], timeout, self.label, label or action,
            env=self.environment(action, timeout, interval))
        result = result_of(program, label or action, timeout)
        if label == "status" and result.status is OcfStatus.ERR_INSTALLED:
            # A probe on a node lacking the software: the resource cannot be running here.
            return AgentResult(OcfStatus.NOT_RUNNING, result.message)
        return result

    async def start(self, timeout: float) -> AgentResult:
        return await self._run("start", timeout)

    async def stop(self, timeout: float) -> AgentResult:
        return await self._run("stop", timeout)

    async def status(self, timeout: float) -> AgentResult:
        return await self._run("monitor", timeout, 0.0, label="status")

    async def monitor(self, timeout: float) -> AgentResult:
        return await self._run("monitor", timeout, self.options.interval_for(self))
