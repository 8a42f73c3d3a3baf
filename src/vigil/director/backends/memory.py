"""An in-memory backend for tests: a table, a log of transactions, injectable failure."""

from __future__ import annotations

from collections.abc import Sequence

from vigil.director.backends.base import Backend, BackendError, planned_table
from vigil.lvs.operations import Operation
from vigil.lvs.syncdaemon import SyncDaemon, SyncState
from vigil.lvs.table import Table


class MemoryBackend(Backend):
    name = "memory"
    has_sync_daemon = True

    def __init__(self, table: Table | None = None):
        self.table = table or Table()
        self.transactions: list[list[Operation]] = []
        self.fail_next: str | None = None
        self.active = True
        self.roles: list[bool] = []  # every set_active, in order
        #: sync daemons as the kernel keeps them: at most one per state
        self.daemons: dict[SyncState, SyncDaemon] = {}

    async def sync_daemons(self) -> list[SyncDaemon]:
        return list(self.daemons.values())

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        if daemon.state in self.daemons:
            raise BackendError("IPVS refused: File exists")
        self.daemons[daemon.state] = daemon

    async def stop_sync_daemon(self, state: SyncState) -> None:
        if self.daemons.pop(state, None) is None:
            raise BackendError("IPVS refused: No such process")

    async def set_active(self, active: bool) -> None:
        self.active = active
        self.roles.append(active)

    async def read(self) -> Table:
        return self.table

    async def apply(self, operations: Sequence[Operation], desired: Table) -> None:
        if self.fail_next:
            reason, self.fail_next = self.fail_next, None
            raise BackendError(reason)
        result = planned_table(self.table, operations, desired)
        if operations:
            self.transactions.append(list(operations))
        self.table = result
