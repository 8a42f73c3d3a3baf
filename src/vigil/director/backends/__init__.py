"""Backends: what holds the LVS table and moves the traffic (see `base`).

`memory` (tests), `userspace` (an asyncio proxy); the kernel data paths
(`nftables`, `ipvs`) plug in through `base.KERNEL_BACKENDS`.
"""

from vigil.director.backends.base import (
    Backend,
    BackendError,
    Counters,
    Rates,
    RealStats,
    ServiceStats,
    backend_registry,
    choose,
)

__all__ = ["Backend", "BackendError", "Counters", "Rates", "RealStats", "ServiceStats",
           "backend_registry", "choose"]
