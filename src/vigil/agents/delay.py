"""Delay: wait on start and stop (heartbeat's test agent, `Delay[::start[::stop]]`).

Defaults as heartbeat's wrapper: 10 s on start, the stop delay equal to the
start delay.
"""

from __future__ import annotations

import asyncio

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.pseudo import PseudoState


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AgentConfigError(f"Delay: {text!r} is not a number of seconds",
                               OcfStatus.ERR_ARGS) from None
    if value < 0:
        raise AgentConfigError("Delay: a delay cannot be negative", OcfStatus.ERR_ARGS)
    return value


class Delay(Agent):
    default_interval = 30.0
    default_timeout = 60.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, paths: AgentPaths | None = None):
        super().__init__(name, args)
        if len(args) > 2:
            raise AgentConfigError("Delay takes at most two arguments: start and stop delay",
                                   OcfStatus.ERR_ARGS)
        self.start_delay = _seconds(args[0]) if args else 10.0
        self.stop_delay = _seconds(args[1]) if len(args) > 1 else self.start_delay
        self.state = PseudoState((paths or AgentPaths()).state_dir, self.label)

    async def start(self, timeout: float) -> AgentResult:
        if self.start_delay > timeout:
            await asyncio.sleep(timeout)
            return AgentResult(OcfStatus.ERR_GENERIC, f"start timed out after {timeout:g} s")
        await asyncio.sleep(self.start_delay)
        self.state.set()
        return AgentResult(OcfStatus.SUCCESS, f"waited {self.start_delay:g} s")

    async def stop(self, timeout: float) -> AgentResult:
        if self.stop_delay > timeout:
            await asyncio.sleep(timeout)
            return AgentResult(OcfStatus.ERR_GENERIC, f"stop timed out after {timeout:g} s")
        await asyncio.sleep(self.stop_delay)
        self.state.clear()
        return AgentResult(OcfStatus.SUCCESS, f"waited {self.stop_delay:g} s")

    async def status(self, timeout: float) -> AgentResult:
        if self.state.running():
            return AgentResult(OcfStatus.SUCCESS, "running")
        return AgentResult(OcfStatus.NOT_RUNNING, "stopped")
