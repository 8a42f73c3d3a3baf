"""Running external agents (LSB, heartbeat, OCF scripts, systemctl, vigil itself).

Every program runs through `vigil.subprocesses.run_program`: its own process
group, SIGTERM then SIGKILL on timeout, output captured and logged. The
environment is small and fixed (a daemon's environment is not a script's).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence

from vigil.agents.base import AgentResult, OcfStatus
from vigil.log import event
from vigil.subprocesses import ProgramResult, run_program

log = logging.getLogger("vigil.agents")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def script_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What an agent script sees: PATH (the caller's, so tests can put fakes first), C locale."""
    env = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "LANG": "C",
        "LC_ALL": "C",
        "HOME": "/root",
    }
    env.update(extra or {})
    return env


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


async def run_agent_program(argv: Sequence[str], timeout: float, resource: str,
                            operation: str, env: Mapping[str, str] | None = None
                            ) -> ProgramResult:
    """Run one operation's program and put what it said in the log."""
    result = await run_program(list(argv), timeout, env=script_environment(env))
    # "stopped" is a normal answer to status/monitor, not something to warn about
    normal = {0, 3, 7} if operation in ("status", "monitor") else {0}
    level = logging.INFO if result.returncode in normal and not result.timed_out \
        else logging.WARNING
    event(log, "agent.ran", level=level, resource=resource, op=operation,
          rc="timeout" if result.timed_out else result.returncode,
          said=_last_line(result.output)[:200])
    for line in result.output.strip().splitlines()[-20:]:
        log.debug("%s %s: %s", resource, operation, line)
    return result


def result_of(program: ProgramResult, operation: str, timeout: float) -> AgentResult:
    """An exit code as an OCF result (0..7 keep their meaning, anything else is generic)."""
    said = _last_line(program.output)
    if program.timed_out:
        return AgentResult(OcfStatus.ERR_GENERIC,
                           f"{operation} timed out after {timeout:g} s and was killed")
    if program.returncode == 127:  # the program, or one it runs, is missing
        return AgentResult(OcfStatus.ERR_INSTALLED, said or "program not found")
    status = OcfStatus.from_exit_code(program.returncode)
    return AgentResult(status, said or f"exit status {program.returncode}")


#: heartbeat's `*[Nn][Oo][Tt]\ *[Rr]unning*`, but on a word boundary: heartbeat's glob
#: also matches drbddisk's "cannot determine status, may be running" and so
#: reads an unknown state as stopped, the very mistake drbddisk tries to avoid.
_NOT_RUNNING = re.compile(r"\b[Nn][Oo][Tt] .*[Rr]unning")
_RUNNING = re.compile(r"[Rr]unning|OK")


def read_heartbeat_status(program: ProgramResult, timeout: float) -> AgentResult:
    """Whether a heartbeat/LSB script's `status` says the resource is held.

    Heartbeat reads the text: "not ... running" means stopped; "running" or
    "OK" anywhere means held (the exit code of R1 scripts is ignored). When the
    text says neither, vigil falls back to the LSB exit code: 0 running, 1-3
    stopped (1 and 2 also mean a stale pid or lock file), 7 stopped (OCF's "not
    running", which heartbeat's own wrappers of OCF agents, hto-mapfuncs, pass on
    with "Resource is stopped"), anything else unknown.
    An unknown or unreadable state is an error, never "stopped", so a failed
    stop cannot be mistaken for a release.
    """
    if program.timed_out:
        return AgentResult(OcfStatus.ERR_GENERIC,
                           f"status timed out after {timeout:g} s (may be running)")
    said = _last_line(program.output)
    text = program.output
    if _NOT_RUNNING.search(text):
        return AgentResult(OcfStatus.NOT_RUNNING, said)
    if _RUNNING.search(text):
        return AgentResult(OcfStatus.SUCCESS, said)
    code = program.returncode
    if code == 0:
        return AgentResult(OcfStatus.SUCCESS, said or "status exit 0 (running)")
    if code in (1, 2, 3, 7):
        return AgentResult(OcfStatus.NOT_RUNNING, said or f"status exit {code} (stopped)")
    return AgentResult(OcfStatus.ERR_GENERIC,
                       said or f"status exit {code} (unknown: may be running)")
