"""What an ldirectord.cf reload changes, in words (pure).

The director keeps the check state of every service and real server that is
still configured (`HealthPolicy.configure`); this says what differs, so the
log shows what a reload did: services added, removed or changed (and which of
their settings), real servers added, removed or re-weighted.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from vigil.director.settings import DirectorConfig, RealSpec, ServiceConfig

#: the settings of a virtual section compared one by one (reals are compared by key)
_SKIP = frozenset({"reals", "service"})


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _service_changes(name: str, old: ServiceConfig, new: ServiceConfig) -> list[str]:
    out: list[str] = []
    if old.service != new.service:
        out.append(f"virtual {name}: scheduler, persistence or netmask changed")
    for item in fields(ServiceConfig):
        if item.name in _SKIP:
            continue
        a, b = getattr(old, item.name), getattr(new, item.name)
        if a != b:
            out.append(f"virtual {name}: {item.name} {_show(a)} -> {_show(b)}")
    before: dict[Any, RealSpec] = {r.key: r for r in old.reals}
    after: dict[Any, RealSpec] = {r.key: r for r in new.reals}
    for key in before.keys() - after.keys():
        out.append(f"virtual {name}: real {key} removed")
    for key in after.keys() - before.keys():
        out.append(f"virtual {name}: real {key} added")
    for key in before.keys() & after.keys():
        if before[key] != after[key]:
            a_real, b_real = before[key].real, after[key].real
            if a_real.weight != b_real.weight:
                out.append(f"virtual {name}: real {key} weight {a_real.weight} -> "
                           f"{b_real.weight}")
            else:
                out.append(f"virtual {name}: real {key} changed")
    return sorted(out)


def describe(old: DirectorConfig, new: DirectorConfig) -> list[str]:
    """Every difference between the running configuration and the reloaded one."""
    out: list[str] = []
    for item in fields(DirectorConfig):
        if item.name in ("services", "source"):
            continue
        a, b = getattr(old, item.name), getattr(new, item.name)
        if a != b:
            out.append(f"{item.name} {_show(a)} -> {_show(b)}")
    before, after = old.service_map, new.service_map
    for key in sorted(before.keys() - after.keys(), key=str):
        out.append(f"virtual {key} removed")
    for key in sorted(after.keys() - before.keys(), key=str):
        out.append(f"virtual {key} added")
    for key in sorted(before.keys() & after.keys(), key=str):
        if before[key] != after[key]:
            out += _service_changes(str(key), before[key], after[key])
    return out
