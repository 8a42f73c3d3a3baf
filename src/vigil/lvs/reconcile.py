"""Desired table vs actual table -> the shortest ordered list of operations.

Order matters for traffic: services are created and edited first, then real
servers are added and re-weighted, and only then are old real servers and
services removed, so a service never passes through an empty state that the
change does not itself call for. The result is idempotent: reconciling a
table with itself gives nothing to do, and applying the operations to the
actual table gives exactly the desired one.
"""

from __future__ import annotations

from vigil.lvs.operations import (
    AddReal,
    AddService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    Operation,
)
from vigil.lvs.table import Table


def reconcile(desired: Table, actual: Table) -> list[Operation]:
    add_services: list[Operation] = []
    edit_services: list[Operation] = []
    add_reals: list[Operation] = []
    edit_reals: list[Operation] = []
    delete_reals: list[Operation] = []
    delete_services: list[Operation] = []

    actual_map = actual.service_map
    desired_map = desired.service_map
    for service in desired:
        current = actual_map.get(service.key)
        if current is None:
            add_services.append(AddService(service.without_reals()))
            add_reals.extend(AddReal(service.key, real) for real in service.reals)
            continue
        if not service.settings_equal(current):
            edit_services.append(EditService(service.without_reals()))
        current_reals = current.real_map
        for real in service.reals:
            existing = current_reals.get(real.key)
            if existing is None:
                add_reals.append(AddReal(service.key, real))
            elif existing != real:
                edit_reals.append(EditReal(service.key, real))
        wanted = {real.key for real in service.reals}
        delete_reals.extend(
            DeleteReal(service.key, key) for key in current_reals if key not in wanted
        )
    delete_services.extend(
        DeleteService(service.key) for service in actual if service.key not in desired_map
    )
    return [
        *add_services,
        *edit_services,
        *add_reals,
        *edit_reals,
        *delete_reals,
        *delete_services,
    ]
