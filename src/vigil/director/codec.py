"""Tables, operations and counters as JSON (the control socket, state files, --json)."""

from __future__ import annotations

from typing import Any

from vigil.director.backends.base import Connection, ServiceStats
from vigil.lvs.operations import (
    AddReal,
    AddService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    Operation,
)
from vigil.lvs.table import (
    Forward,
    Protocol,
    RealKey,
    RealServer,
    ServiceKey,
    Table,
    VirtualService,
)


def key_to_json(key: ServiceKey) -> dict[str, Any]:
    return {"protocol": key.protocol.value, "address": key.address, "port": key.port,
            "fwmark": key.fwmark, "family": key.family}


def key_from_json(data: dict[str, Any]) -> ServiceKey:
    return ServiceKey(Protocol(data["protocol"]), data.get("address", ""), data.get("port", 0),
                      data.get("fwmark", 0), data.get("family", 4))


def real_to_json(real: RealServer) -> dict[str, Any]:
    return {"address": real.address, "port": real.port, "weight": real.weight,
            "forward": real.forward.value, "upper": real.upper, "lower": real.lower}


def real_from_json(data: dict[str, Any]) -> RealServer:
    return RealServer(data["address"], data.get("port", 0), data.get("weight", 1),
                      Forward(data.get("forward", "gate")), data.get("upper", 0),
                      data.get("lower", 0))


def service_to_json(service: VirtualService) -> dict[str, Any]:
    return {"key": key_to_json(service.key), "scheduler": service.scheduler,
            "persistent": service.persistent, "netmask": service.netmask,
            "sched_flags": list(service.sched_flags), "ops": service.ops,
            "reals": [real_to_json(r) for r in service.reals]}


def service_from_json(data: dict[str, Any]) -> VirtualService:
    return VirtualService(
        key_from_json(data["key"]), data.get("scheduler", "wlc"), data.get("persistent"),
        data.get("netmask"), tuple(data.get("sched_flags", ())), data.get("ops", False),
        tuple(real_from_json(r) for r in data.get("reals", ())))


def table_to_json(table: Table) -> list[dict[str, Any]]:
    return [service_to_json(s) for s in table]


def table_from_json(data: list[dict[str, Any]]) -> Table:
    return Table.of(service_from_json(s) for s in data)


def operation_to_json(op: Operation) -> dict[str, Any]:
    match op:
        case AddService(service) | EditService(service):
            return {"op": type(op).__name__, "service": service_to_json(service)}
        case DeleteService(key):
            return {"op": "DeleteService", "key": key_to_json(key)}
        case AddReal(key, real) | EditReal(key, real):
            return {"op": type(op).__name__, "key": key_to_json(key), "real": real_to_json(real)}
        case DeleteReal(key, real_key):
            return {"op": "DeleteReal", "key": key_to_json(key),
                    "real": {"address": real_key.address, "port": real_key.port}}
    raise ValueError(f"unknown operation {op!r}")


def operation_from_json(data: dict[str, Any]) -> Operation:
    kind = data["op"]
    if kind in ("AddService", "EditService"):
        cls = AddService if kind == "AddService" else EditService
        return cls(service_from_json(data["service"]))
    if kind == "DeleteService":
        return DeleteService(key_from_json(data["key"]))
    if kind in ("AddReal", "EditReal"):
        cls2 = AddReal if kind == "AddReal" else EditReal
        return cls2(key_from_json(data["key"]), real_from_json(data["real"]))
    if kind == "DeleteReal":
        return DeleteReal(key_from_json(data["key"]),
                          RealKey(data["real"]["address"], data["real"].get("port", 0)))
    raise ValueError(f"unknown operation {kind!r}")


def stats_to_json(stats: dict[ServiceKey, ServiceStats]) -> list[dict[str, Any]]:
    out = []
    for key, service in stats.items():
        out.append({
            "key": key_to_json(key),
            "counters": dict(service.counters.__dict__),
            "rates": dict(service.rates.__dict__),
            "reals": [{"address": rk.address, "port": rk.port, "active": rs.active,
                       "inactive": rs.inactive, "counters": dict(rs.counters.__dict__),
                       "rates": dict(rs.rates.__dict__)} for rk, rs in service.reals.items()],
        })
    return out


def connection_to_json(connection: Connection) -> dict[str, Any]:
    return {"protocol": connection.protocol, "expire": connection.expire,
            "state": connection.state, "source": list(connection.source),
            "virtual": list(connection.virtual), "destination": list(connection.destination)}
