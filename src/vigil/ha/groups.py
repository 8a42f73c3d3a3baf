"""Resource groups as the failover core sees them, and how the daemon drives them.

A group is one haresources line: a home (preferred) node and resources that
start left to right and stop right to left; its first resource is its key.
The core only decides *where* each group runs. Running it is the job of a
`GroupDriver`: the resource-agents layer provides the real one; tests use
`vigil.ha.testing_driver`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from vigil.config.haresources import ResourceRef


@dataclass(frozen=True)
class Group:
    """One haresources line. `index` is its position: the same on every node."""

    index: int
    home: str
    #: the resources as heartbeat names them on the wire and in logs
    resources: tuple[str, ...]
    #: the same resources as haresources' model read them (empty when built from labels)
    refs: tuple[ResourceRef, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        return self.resources[0]

    def __str__(self) -> str:
        return self.key


@runtime_checkable
class GroupDriver(Protocol):
    """Starts, stops and probes whole groups. Never raises for a resource failure.

    * `start(group)` brings every resource up, left to right; True when all are
      up. On a failure it returns False and leaves what it could not start
      down; the core then calls `stop` to clean up.
    * `stop(group)` takes every resource down, right to left; True when all are
      down (a failed stop leaves the group "stuck": never taken over silently).
    * `held(group)` says whether any resource of the group runs here (probed at
      start-up, so a group left running by a crash is known and not doubled).
    * `announce(group)` re-announces the group's addresses (gratuitous ARP,
      unsolicited neighbour advertisements) so stale caches heal after a split
      brain; a no-op for groups without addresses.
    * optionally, `handoff(group)` after a stop that leaves the group to the peer
      (a split brain settled): announce its addresses at the peer's MAC, for a
      keeper that does not announce them itself.

    The daemon runs these as tasks with timeouts, never in the heartbeat's way.
    """

    async def start(self, group: Group) -> bool: ...

    async def stop(self, group: Group) -> bool: ...

    async def held(self, group: Group) -> bool: ...

    async def announce(self, group: Group) -> None: ...


@runtime_checkable
class MonitoringDriver(Protocol):
    """A driver that can also watch a running group (optional capability).

    `monitor(group)` runs while the group runs here and returns the reason
    once the group has failed for good (the resource-level restarts are the
    driver's business); the daemon cancels it before stopping the group.
    """

    async def monitor(self, group: Group) -> str: ...


def groups_from_lines(lines: list[tuple[str, list[str]]]) -> tuple[Group, ...]:
    """[(home node, [resource, ...]), ...] (haresources order) -> groups."""
    return tuple(Group(i, home.lower(), tuple(resources))
                 for i, (home, resources) in enumerate(lines))


def groups_from_refs(lines: Sequence[tuple[str, Sequence[ResourceRef]]]) -> tuple[Group, ...]:
    """haresources' groups as parsed: each keeps its typed resources beside their labels,
    so the agents are built from the model and never from re-parsed text."""
    return tuple(Group(i, home.lower(), tuple(r.label for r in refs), tuple(refs))
                 for i, (home, refs) in enumerate(lines))


def fingerprint(groups: tuple[Group, ...]) -> str:
    """A short digest of the group list: both nodes must have the same haresources."""
    import zlib

    text = "\n".join(f"{g.home} {' '.join(g.resources)}" for g in groups)
    return format(zlib.crc32(text.encode()), "08x")
