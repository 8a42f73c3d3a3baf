"""drbddisk: make this node the primary of a replicated volume, and give it up.

heartbeat's `drbddisk[::NAME]` (from drbd-utils). Start promotes (tried 6
times, 1 s apart: the peer may not have noticed yet that we took over), stop
demotes (tried 3 times). Status: Primary is running, Secondary or
Unconfigured is stopped, anything else "may be running": an error, never
"stopped", so that a failed demotion can never let the peer become primary
too.

Backends: vigil's own replicated volume (`vigil volume primary|secondary|role
NAME`) or DRBD's `drbdadm` when the DRBD kernel module is loaded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from vigil.agents.base import Agent, AgentConfigError, AgentResult, OcfStatus
from vigil.agents.options import AgentOptions, DrbdBackend
from vigil.agents.script import run_agent_program
from vigil.control.client import exchange
from vigil.errors import VigilError

PROC_DRBD = Path("/proc/drbd")
#: where `vigil volume` daemons listen (VolumeConfig.run_dir: /run/vigil/volume/NAME)
VOLUME_RUN_DIR = Path("/run/vigil/volume")
#: local disk states a promotion refuses (without --force)
NOT_PROMOTABLE = frozenset({"Inconsistent", "Outdated"})


class DrbdDisk(Agent):
    default_interval = 10.0
    default_timeout = 30.0

    def __init__(self, name: str, args: tuple[str, ...] = (),
                 options: AgentOptions | None = None, proc_drbd: Path = PROC_DRBD):
        super().__init__(name, args)
        self.options = options or AgentOptions()
        if len(args) > 1:
            raise AgentConfigError("drbddisk takes at most one argument: the resource name",
                                   OcfStatus.ERR_ARGS)
        self.resource = args[0] if args else "all"
        self.proc_drbd = proc_drbd

    @property
    def backend(self) -> DrbdBackend:
        chosen = self.options.drbd_backend
        if chosen is DrbdBackend.AUTO:
            return DrbdBackend.DRBDADM if self.proc_drbd.exists() else DrbdBackend.VIGIL
        return chosen

    def _argv(self, verb: str) -> list[str]:
        if self.backend is DrbdBackend.DRBDADM:
            return [self.options.drbdadm, verb, self.resource]
        return [*self.options.vigil_command, "volume", verb, self.resource]

    async def _retry(self, verb: str, tries: int, timeout: float) -> AgentResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        said = ""
        for attempt in range(1, max(tries, 1) + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            program = await run_agent_program(self._argv(verb), remaining, self.label, verb)
            if program.ok:
                return AgentResult(OcfStatus.SUCCESS, f"{self.resource} is now "
                                   f"{'Primary' if verb == 'primary' else 'Secondary'}")
            said = program.output.strip().splitlines()[-1] if program.output.strip() else (
                "timed out" if program.timed_out else f"exit {program.returncode}")
            if attempt < tries:
                await asyncio.sleep(min(self.options.drbd_retry_delay,
                                        max(deadline - loop.time(), 0)))
        return AgentResult(OcfStatus.ERR_GENERIC, f"{verb} {self.resource} failed "
                           f"after {tries} tries: {said}")

    async def start(self, timeout: float) -> AgentResult:
        return await self._retry("primary", self.options.drbd_start_tries, timeout)

    async def stop(self, timeout: float) -> AgentResult:
        return await self._retry("secondary", self.options.drbd_stop_tries, timeout)

    async def unready(self, timeout: float) -> str | None:
        """A disk that is Inconsistent (a resync target) or Outdated cannot be promoted:
        the group cannot start here until the resync is done."""
        if self.resource == "all":
            return None
        if self.backend is DrbdBackend.DRBDADM:
            program = await run_agent_program(self._argv("dstate"), timeout, self.label,
                                              "dstate")
            said = program.output.strip().splitlines()[-1] if program.ok and \
                program.output.strip() else ""
            local = said.split("/")[0].strip()
        else:
            local = await asyncio.to_thread(self._vigil_disk, timeout)
        if local in NOT_PROMOTABLE:
            return f"{self.resource}: disk {local} (the resync has not finished)"
        return None

    def _vigil_disk(self, timeout: float) -> str:
        """The local disk state from vigil volume's control socket ("" if it does not say)."""
        try:
            answer = exchange(VOLUME_RUN_DIR / self.resource / "control.sock",
                              {"verb": "status"}, timeout)
        except VigilError:
            return ""
        status = answer.get("status")
        disk = status.get("disk") if isinstance(status, dict) else None
        return disk if isinstance(disk, str) else ""

    async def status(self, timeout: float) -> AgentResult:
        if self.resource == "all":
            return AgentResult(OcfStatus.ERR_CONFIGURED,
                               "a resource name is required for status inquiries")
        program = await run_agent_program(self._argv("role"), timeout, self.label, "status")
        role = ""
        if program.ok and program.output.strip():
            # drbdadm 8.4 prints "Primary/Secondary" (local/peer); 9 and vigil print "Primary".
            role = program.output.strip().splitlines()[-1].split("/")[0].strip()
        if role == "Primary":
            return AgentResult(OcfStatus.SUCCESS, f"running (Primary) {self.resource}")
        if role in ("Secondary", "Unconfigured"):
            return AgentResult(OcfStatus.NOT_RUNNING, f"stopped ({role}) {self.resource}")
        return AgentResult(OcfStatus.ERR_GENERIC,
                           f"cannot determine status of {self.resource}, may be running "
                           f"({role or 'Unknown'})")
