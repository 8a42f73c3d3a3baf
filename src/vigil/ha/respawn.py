"""ha.cf's `respawn USER PROGRAM...`: programs started with the daemon, restarted when
they die, ended when it stops (heartbeat's client children).

As heartbeat does: each program runs as USER with ha.cf's `env` settings added
to the environment; exit code 100 means "do not start me again". A program that
keeps dying is not restarted in a tight loop: a restart waits one second, and
more than `MAX_RESTARTS` exits within `WINDOW` seconds stop the respawning
with a critical log line (heartbeat logs "respawning too fast" too). `failfast`
programs are supervised the same way until one dies: then the node reboots, as
heartbeat does (vigil.cf `reboot_command`).

`RespawnPolicy` is the pure part (exits and times in, a decision out); the
`Supervisor` runs the processes on the daemon's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from vigil.log import event

log = logging.getLogger("vigil.heartbeat")

#: the exit code with which a program asks not to be started again (heartbeat's)
NO_RESPAWN = 100
RESTART_DELAY = 1.0
MAX_RESTARTS = 10
WINDOW = 60.0
STOP_GRACE = 5.0


@dataclass
class RespawnPolicy:
    """When to start a program again (pure: exit codes and `now` in)."""

    delay: float = RESTART_DELAY
    max_restarts: int = MAX_RESTARTS
    window: float = WINDOW
    exits: deque[float] = field(default_factory=deque)

    def exited(self, code: int | None, now: float) -> tuple[float | None, str]:
        """(seconds to wait before starting it again, or None for never; why)."""
        if code == NO_RESPAWN:
            return None, f"exit code {NO_RESPAWN}: it asked not to be started again"
        self.exits.append(now)
        while self.exits and self.exits[0] <= now - self.window:
            self.exits.popleft()
        if len(self.exits) > self.max_restarts:
            return None, (f"died {len(self.exits)} times within {self.window:g} s: "
                          "respawning too fast, given up")
        return self.delay, f"exited ({'signal' if code is None or code < 0 else 'code'} " \
                           f"{code}): starting it again in {self.delay:g} s"


@dataclass(frozen=True)
class Program:
    user: str
    command: str
    failfast: bool = False


class Supervisor:
    """Runs each program, restarts it by its policy, ends them all at `stop`."""

    def __init__(self, programs: list[Program], env: Mapping[str, str] | None = None,
                 policy: RespawnPolicy | None = None,
                 on_failfast: Callable[[str], Awaitable[None]] | None = None):
        self.programs = programs
        #: a failfast program died: reboot the node (without it: respawned like respawn)
        self.on_failfast = on_failfast
        self.env = dict(env or {})
        self._policy_template = policy or RespawnPolicy()
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for number, program in enumerate(self.programs):
            policy = RespawnPolicy(self._policy_template.delay,
                                   self._policy_template.max_restarts,
                                   self._policy_template.window)
            self._tasks.append(loop.create_task(self._keep(number, program, policy)))

    async def _keep(self, number: int, program: Program, policy: RespawnPolicy) -> None:
        loop = asyncio.get_running_loop()
        kind = "failfast" if program.failfast else "respawn"
        while not self._stopping:
            try:
                process = await asyncio.create_subprocess_exec(
                    *shlex.split(program.command), user=program.user,
                    env={**os.environ, **self.env}, stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True)
            except (OSError, ValueError, LookupError) as exc:  # missing program or user
                code: int | None = 127
                event(log, "respawn.failed", logging.ERROR, kind=kind,
                      program=program.command, error=exc)
            else:
                self.processes[number] = process
                event(log, "respawn.started", kind=kind, program=program.command,
                      pid=process.pid, user=program.user)
                code = await process.wait()
                self.processes.pop(number, None)
                if self._stopping:
                    return
            if program.failfast and self.on_failfast is not None:
                event(log, "respawn.exited", logging.CRITICAL, kind=kind,
                      program=program.command, code=code, decision="reboot the node")
                await self.on_failfast(f"failfast program {program.command} exited "
                                       f"(code {code})")
                return
            wait, why = policy.exited(code, loop.time())
            level = logging.CRITICAL if wait is None else logging.WARNING
            event(log, "respawn.exited", level, kind=kind, program=program.command,
                  code=code, decision=why)
            if wait is None:
                return
            await asyncio.sleep(wait)

    async def stop(self) -> None:
        """SIGTERM to every program (and its process group), SIGKILL after the grace."""
        self._stopping = True
        for process in list(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
        for process in list(self.processes.values()):
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                await process.wait()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE)
