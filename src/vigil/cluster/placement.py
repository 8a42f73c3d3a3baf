"""Whether this node should try to hold a group, under cluster_backend etcd (pure).

The lease decides who *may* run a group; this decides who *wants* to. It keeps
haresources' meaning with more than two nodes: the group's home node (the
line's first word) takes it whenever it is up; another node takes it while the
home node is down (its presence key has gone with its lease) or when the home
node, though up, has left the group free for `grace` seconds (its start failed
there, or it is in standby). With auto_failback on, a node that is not home
gives the group back once the home node is up again; with it off, the holder
keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """One group's preference."""

    #: the haresources home node (lower case), or None: every node alike
    home: str | None
    auto_failback: bool
    #: how long a free group waits for its home node when that node is up
    grace: float


def wants(placement: Placement, me: str, *, home_present: bool, holding: bool,
          free_since: float | None, now: float, standby: bool = False,
          fit: bool = True) -> bool:
    """Should `me` hold (or go on holding) the group now?

    `home_present`: the home node is up (its presence key exists) and fit;
    `holding`: the group's key is ours; `free_since`: since when the key has been
    seen free (None: it is held); `fit`: this node reaches as many ping nodes as
    the best node up (heartbeat's rule: the node that sees more of the network
    holds the groups).
    """
    if standby or not fit:
        return False
    home = placement.home
    if home is None or home == me.lower():
        return True
    if not home_present:
        return True
    if holding:
        return not placement.auto_failback
    return free_since is not None and now - free_since >= placement.grace


def fitness(reach: dict[str, int], me: str, mine: int | None) -> dict[str, bool]:
    """Which nodes reach as many ping nodes as the best one (None for `mine`: no ping
    nodes configured, and every node is fit). `reach` is what each node last said,
    this node's own count `mine` counting over what it said."""
    if mine is None:
        return {node: True for node in reach} | {me: True}
    counts = dict(reach) | {me: mine}
    best = max(counts.values())
    return {node: count >= best for node, count in counts.items()}
