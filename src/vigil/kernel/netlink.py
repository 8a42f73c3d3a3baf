"""Netlink sockets (pyroute2) bound to a chosen network namespace.

pyroute2's own `IPRoute(netns=...)` forks a helper process per socket; opening
the socket with this thread inside the namespace is faster and has no race
with a namespace that was created a moment ago.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.kernel.namespaces import entered_netns, named_netns_path


@contextlib.contextmanager
def iproute(netns_path: str | Path | None = None) -> Iterator[Any]:
    """An `IPRoute` whose socket lives in the given namespace (None: ours)."""
    from pyroute2 import IPRoute

    if netns_path is None:
        ipr = IPRoute()
    else:
        with entered_netns(netns_path):
            ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def create_named_netns(name: str) -> Path:
    """Create a named network namespace, as `ip netns add` does (it is what we run)."""
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if done.returncode != 0:
        raise VigilError(f"cannot create network namespace {name}: {done.stderr.strip()}")
    return named_netns_path(name)


def delete_named_netns(name: str) -> None:
    if named_netns_path(name).exists():
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
