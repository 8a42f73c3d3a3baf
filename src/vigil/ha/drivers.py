"""Which `GroupDriver` runs the groups: a registry, one entry per driver.

`agents` is the resource-agents layer (IPaddr, Filesystem, drbddisk, LSB and
OCF scripts) once it provides `vigil.agents.runtime.group_driver()`; `test`
is the heartbeat daemon's own test driver (`vigil.ha.testdriver`). `auto`
picks `agents` when it is installed, else `test`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from vigil.errors import UsageError
from vigil.ha.groups import GroupDriver


def _agents() -> GroupDriver:
    try:
        runtime = importlib.import_module("vigil.agents.runtime")
    except ImportError:
        raise UsageError("the resource-agents group runtime (vigil.agents.runtime) is not "
                         "installed; use --group-driver test") from None
    return runtime.group_driver()  # type: ignore[no-any-return]


def _test() -> GroupDriver:
    from vigil.ha.testdriver import TestGroupDriver

    return TestGroupDriver()


GROUP_DRIVERS: dict[str, Callable[[], GroupDriver]] = {
    "agents": _agents,
    "test": _test,
}


def make_driver(name: str = "auto") -> GroupDriver:
    if name == "auto":
        try:
            return _agents()
        except UsageError:
            return _test()
    factory = GROUP_DRIVERS.get(name)
    if factory is None:
        raise UsageError(f"unknown group driver {name!r} (known: auto, "
                         f"{', '.join(GROUP_DRIVERS)})")
    return factory()
