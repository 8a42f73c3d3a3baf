"""The agent contract every resource speaks: OCF exit codes, results, operations.

The cluster daemon drives groups of agents through this interface only, so a
built-in Python agent, an LSB script, an OCF agent or a systemd unit look the
same to it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import IntEnum


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
    """

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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"
