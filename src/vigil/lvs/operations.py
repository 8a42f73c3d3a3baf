"""The operations a backend applies: ipvsadm's -A/-E/-D and -a/-e/-d as data.

`reconcile` produces them, `apply_operations` is their meaning (a pure
function on `Table`), and every backend must make the same change to what it
holds. A backend applies one list as one transaction: all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vigil.lvs.table import RealKey, RealServer, ServiceKey, Table, VirtualService


class OperationError(ValueError):
    """An operation does not fit the table (adding what exists, editing what does not)."""


@dataclass(frozen=True)
class AddService:
    service: VirtualService  # its reals are ignored: they come as AddReal

    def __str__(self) -> str:
        return f"add-service {self.service.key} {self.service.scheduler}"


@dataclass(frozen=True)
class EditService:
    service: VirtualService  # scheduler, persistence, flags; reals ignored

    def __str__(self) -> str:
        return f"edit-service {self.service.key} {self.service.scheduler}"


@dataclass(frozen=True)
class DeleteService:
    key: ServiceKey  # removes its reals too

    def __str__(self) -> str:
        return f"delete-service {self.key}"


@dataclass(frozen=True)
class AddReal:
    service: ServiceKey
    real: RealServer

    def __str__(self) -> str:
        return f"add-real {self.service} -> {self.real.key} weight={self.real.weight}"


@dataclass(frozen=True)
class EditReal:
    service: ServiceKey
    real: RealServer

    def __str__(self) -> str:
        return f"edit-real {self.service} -> {self.real.key} weight={self.real.weight}"


@dataclass(frozen=True)
class DeleteReal:
    service: ServiceKey
    real: RealKey

    def __str__(self) -> str:
        return f"delete-real {self.service} -> {self.real}"


Operation = AddService | EditService | DeleteService | AddReal | EditReal | DeleteReal


def service_key(op: Operation) -> ServiceKey:
    """The virtual service an operation touches."""
    if isinstance(op, (AddService, EditService)):
        return op.service.key
    if isinstance(op, DeleteService):
        return op.key
    return op.service


def apply_operations(table: Table, operations: Iterable[Operation]) -> Table:
    """What the operations do to a table; raises `OperationError` on a misfit."""
    settings: dict[ServiceKey, VirtualService] = {}
    reals: dict[ServiceKey, dict[RealKey, RealServer]] = {}
    for service in table:
        settings[service.key] = service
        reals[service.key] = dict(service.real_map)
    touched: set[ServiceKey] = set()
    for op in operations:
        match op:
            case AddService(service):
                if service.key in settings:
                    raise OperationError(f"{service.key} exists already")
                settings[service.key] = service
                reals[service.key] = {}
                touched.add(service.key)
            case EditService(service):
                if service.key not in settings:
                    raise OperationError(f"{service.key} does not exist")
                settings[service.key] = service
                touched.add(service.key)
            case DeleteService(key):
                if settings.pop(key, None) is None:
                    raise OperationError(f"{key} does not exist")
                reals.pop(key)
            case AddReal(key, real):
                current = _reals(reals, key)
                if real.key in current:
                    raise OperationError(f"{real.key} exists already in {key}")
                current[real.key] = real
                touched.add(key)
            case EditReal(key, real):
                current = _reals(reals, key)
                if real.key not in current:
                    raise OperationError(f"{real.key} does not exist in {key}")
                current[real.key] = real
                touched.add(key)
            case DeleteReal(key, real_key):
                current = _reals(reals, key)
                if current.pop(real_key, None) is None:
                    raise OperationError(f"{real_key} does not exist in {key}")
                touched.add(key)
            case _:
                raise OperationError(f"unknown operation {op!r}")
    services = [
        settings[key].with_reals(reals[key].values()) if key in touched else settings[key]
        for key in settings
    ]
    return Table(tuple(services))


def _reals(
    reals: dict[ServiceKey, dict[RealKey, RealServer]], key: ServiceKey
) -> dict[RealKey, RealServer]:
    current = reals.get(key)
    if current is None:
        raise OperationError(f"{key} does not exist")
    return current
