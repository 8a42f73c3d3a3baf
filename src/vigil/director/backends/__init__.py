"""Backends: what holds the LVS table and moves the traffic (see `base`).

`memory` (tests), `userspace` (an asyncio proxy); the kernel data paths
(`nftables`, `ipvs`) are tried first, in `KERNEL_BACKENDS` order. A backend
module that cannot be imported is left out of the registry, and why is logged.
"""

from __future__ import annotations

import importlib
import logging

from vigil.director.backends.base import (
    Backend,
    BackendError,
    Counters,
    Rates,
    RealStats,
    ServiceStats,
)
from vigil.errors import VigilError

log = logging.getLogger("vigil.director")

__all__ = ["KERNEL_BACKENDS", "Backend", "BackendError", "Counters", "Rates", "RealStats",
           "ServiceStats", "backend_registry", "choose"]


def backend_registry() -> dict[str, type[Backend]]:
    """Name -> backend class, most capable first (import here: no cycles)."""
    from vigil.director.backends.memory import MemoryBackend
    from vigil.director.backends.userspace import UserspaceBackend

    registry: dict[str, type[Backend]] = {}
    # the kernel data paths first: `choose("auto")` takes the first that can run
    for module_name, class_name in KERNEL_BACKENDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            log.debug("director backend %s left out: %s cannot be imported (%s)",
                      class_name, module_name, exc)
            continue
        cls = getattr(module, class_name)
        registry[cls.name] = cls
    registry[UserspaceBackend.name] = UserspaceBackend
    registry[MemoryBackend.name] = MemoryBackend
    return registry


#: (module, class) of the kernel backends, tried in this order by `choose("auto")`.
KERNEL_BACKENDS: tuple[tuple[str, str], ...] = (
    ("vigil.director.backends.ipvs", "IpvsBackend"),
    ("vigil.director.backends.nftables", "NftablesBackend"),
)


def choose(name: str = "auto") -> type[Backend]:
    registry = backend_registry()
    if name != "auto":
        cls = registry.get(name)
        if cls is None:
            raise VigilError(f"unknown director backend {name!r} (known: {', '.join(registry)})")
        reason = cls.available()
        if reason:
            raise VigilError(f"backend {name} cannot run here: {reason}")
        return cls
    for cls in registry.values():
        if cls.name != "memory" and cls.available() is None:
            return cls
    raise VigilError("no director backend can run here")
