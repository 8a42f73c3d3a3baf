"""Fencing with the standard fence agents (fence-agents: fence_ipmilan, fence_virsh,
fence_dummy, ...): key=value lines on stdin, exit 0 for done.

A `fence NODE` section of vigil.cf names the agent and its parameters. To
fence, the agent is run with `action=off`; then, as Pacemaker's fencer does,
the result is verified with `action=status` (exit 2: off). Only both make the
node fenced: a device that claims success while the node still runs must not
let two nodes run a group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vigil.config.fence_agents import agent_path
from vigil.subprocesses import ProgramResult, run_program

#: fence-agents' status exit codes
STATUS_ON, STATUS_ERROR, STATUS_OFF = 0, 1, 2


@dataclass(frozen=True)
class FenceOutcome:
    fenced: bool
    reason: str


def request(action: str, params: Mapping[str, str]) -> str:
    """The stdin of one agent run (parameters may not carry newlines)."""
    lines = [f"action={action}"]
    lines += [f"{key}={value}" for key, value in params.items()
              if key != "action" and "\n" not in value]
    return "\n".join(lines) + "\n"


async def run_agent(agent: str, action: str, params: Mapping[str, str],
                    timeout: float) -> ProgramResult | None:
    path = agent_path(agent)
    if path is None:
        return None
    return await run_program([path], timeout=timeout, input=request(action, params).encode())


async def fence_off(agent: str, params: Mapping[str, str], timeout: float) -> FenceOutcome:
    off = await run_agent(agent, "off", params, timeout)
    if off is None:
        return FenceOutcome(False, f"fence agent {agent} not found")
    if not off.ok:
        why = "timed out" if off.timed_out else f"exit {off.returncode}"
        return FenceOutcome(False, f"{agent} action=off failed ({why}): "
                            f"{off.output.strip()[-200:]}")
    status = await run_agent(agent, "status", params, timeout)
    if status is None or status.timed_out or status.returncode != STATUS_OFF:
        said = "timed out" if status is not None and status.timed_out else \
            f"exit {status.returncode if status else '?'}"
        return FenceOutcome(False, f"{agent} said off, but action=status does not confirm it "
                            f"({said}; 2 means off)")
    return FenceOutcome(True, f"{agent}: off, and status confirms it")


async def fence_monitor(agent: str, params: Mapping[str, str], timeout: float) -> str | None:
    """None when the agent answers `action=monitor` (its device is reachable), else why not:
    a fence device that cannot be reached would only be found out when a node must die."""
    result = await run_agent(agent, "monitor", params, timeout)
    if result is None:
        return f"fence agent {agent} not found"
    if result.ok:
        return None
    why = "timed out" if result.timed_out else f"exit {result.returncode}"
    said = result.output.strip().splitlines()
    return f"{agent} action=monitor failed ({why})" + (f": {said[-1][:200]}" if said else "")
