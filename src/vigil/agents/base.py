"""The agent contract every resource speaks: OCF exit codes, results, operations.

The cluster daemon drives groups of agents through this interface only, so a
built-in Python agent, an LSB script, an OCF agent or a systemd unit look the
same to it.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import IntEnum

from vigil.errors import VigilError


class OcfStatus(IntEnum):
    """OCF exit codes (the LSB/OCF resource agent API)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7

    @classmethod
    def from_exit_code(cls, code: int | None) -> OcfStatus:
        """An agent's exit code as an OCF status; anything outside 0..7 is a generic error."""
        if code is not None and 0 <= code <= 7:
            return cls(code)
        return cls.ERR_GENERIC


@dataclass(frozen=True)
class AgentResult:
    """What one operation returned, with a line that explains it for the log."""

    status: OcfStatus
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status is OcfStatus.SUCCESS


class Agent(abc.ABC):
    """One resource of a group, e.g. `IPaddr::198.51.100.100/24/eth0` or `mysqld`.

    Operations never raise for an agent failure: they return an `AgentResult`.
    `timeout` is in seconds; an operation that overruns it counts as failed.

    Beyond start/stop/status/monitor (the original contract), an agent may
    override `announce` (tell the network again that this node holds the
    resource, e.g. after a partition heals) and `settle` (wait for work it left
    running in the background, e.g. a gratuitous ARP burst). Both have safe
    defaults, so agents written against the first contract keep working.
    """

    #: Seconds between two monitor operations unless the configuration says otherwise.
    default_interval: float = 10.0
    #: Seconds a start, stop or monitor may take unless the configuration says otherwise.
    default_timeout: float = 20.0

    def __init__(self, name: str, args: tuple[str, ...] = ()):
        self.name = name
        self.args = args

    @property
    def label(self) -> str:
        """The resource as haresources writes it (`name::arg1::arg2`)."""
        return "::".join((self.name, *self.args))

    @abc.abstractmethod
    async def start(self, timeout: float) -> AgentResult: ...

    @abc.abstractmethod
    async def stop(self, timeout: float) -> AgentResult: ...

    @abc.abstractmethod
    async def status(self, timeout: float) -> AgentResult:
        """SUCCESS when running, NOT_RUNNING when cleanly stopped."""

    async def monitor(self, timeout: float) -> AgentResult:
        """A deeper health check than status; agents without one fall back to status."""
        return await self.status(timeout)

    async def unready(self, timeout: float) -> str | None:
        """Why the resource could not start here now (None: it could, or nobody can tell).

        Asked of a group that does not run here, so that its peer keeps it instead of
        handing it back for a start that must fail (a replicated disk still syncing).
        """
        return None

    async def announce(self, timeout: float) -> AgentResult:
        """Re-announce a held resource to the network; most agents have nothing to say."""
        return AgentResult(OcfStatus.ERR_UNIMPLEMENTED, "nothing to announce")

    async def handoff(self, timeout: float) -> AgentResult:
        """After a stop that leaves the resource to the peer: tell the network it is there."""
        return AgentResult(OcfStatus.ERR_UNIMPLEMENTED, "nothing to hand off")

    async def holder_elsewhere(self, timeout: float) -> AgentResult:
        """Whether another host holds this resource too while it runs here (a peer that
        ran it through a partition): SUCCESS naming that host when one answers,
        NOT_RUNNING when none does; most agents cannot tell."""
        return AgentResult(OcfStatus.ERR_UNIMPLEMENTED, "cannot ask the network")

    async def settle(self) -> None:  # noqa: B027 - optional hook, deliberately empty
        """Wait for background work the last operation left running (none by default)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


class AgentConfigError(VigilError):
    """A resource cannot be built from its name and arguments (unknown agent, bad argument).

    `status` says which OCF code the failure corresponds to (ERR_INSTALLED for
    an unknown name, ERR_CONFIGURED or ERR_ARGS for bad arguments), so a
    caller that must still report an operation result can.
    """

    def __init__(self, message: str, status: OcfStatus = OcfStatus.ERR_CONFIGURED):
        super().__init__(message)
        self.status = status


async def bounded(operation: Awaitable[AgentResult], timeout: float,
                  what: str = "operation") -> AgentResult:
    """Run an agent operation with a deadline; overrunning it is a failure, never a hang."""
    try:
        return await asyncio.wait_for(operation, timeout)
    except TimeoutError:
        return AgentResult(OcfStatus.ERR_GENERIC, f"{what} timed out after {timeout:g} s")
