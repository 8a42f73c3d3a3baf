"""An in-memory backend for tests: a table, a log of transactions, injectable failure."""

from __future__ import annotations

from collections.abc import Sequence

from vigil.director.backends.base import Backend, BackendError, planned_table
from vigil.lvs.operations import Operation
from vigil.lvs.table import Table


class MemoryBackend(Backend):
    name = "memory"

    def __init__(self, table: Table | None = None):
        self.table = table or Table()
        self.transactions: list[list[Operation]] = []
        self.fail_next: str | None = None
        self.active = True
        self.roles: list[bool] = []  # every set_active, in order

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
