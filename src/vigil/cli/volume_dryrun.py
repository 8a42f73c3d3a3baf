"""`vigil volume -d VERB NAME`: what a verb would do, said and not done (pure).

drbdadm's `-d` prints the drbdsetup and drbdmeta commands it would run; vigil
has no such backend commands, so each line names the action instead: the
daemon it would start or the request it would send to the daemon's control
socket, and what that does. Nothing is read from the daemon and nothing changes.
"""

from __future__ import annotations

from vigil.replication.config import VolumeConfig
from vigil.replication.control import socket_path

#: what the daemon does for each request, in the words of `VERBS`
_ASKS = {
    "primary": "promote this node",
    "secondary": "demote this node (refused while the device is mounted)",
    "connect": "connect to the peer",
    "disconnect": "drop the link to the peer, stay StandAlone",
    "verify": "start an online verify with the peer",
    "invalidate": "discard this node's data: full resync from the peer",
    "invalidate-remote": "the peer discards its data: full resync to it",
    "outdate": "mark this node's data Outdated",
    "resume-io": "let writes frozen by fencing go on",
    "pause-sync": "pause the running resync",
    "resume-sync": "resume the resync paused here",
    "adjust": "apply what the resource file now says",
}

#: verbs that only read the daemon's state
_READS = frozenset({"status", "role", "cstate", "dstate", "wait-sync"})


def plan(verb: str, cfg: VolumeConfig, *, force: bool = False, standalone: bool = False,
         discard_my_data: bool = False, clear_bitmap: bool = False,
         config_path: str | None = None) -> list[str]:
    """The lines `-d` prints for one resource."""
    local, name = cfg.local, cfg.name
    ask = f"{name}: ask the daemon at {socket_path(cfg.run_dir)}:"
    meta = local.meta_disk if local.internal_metadata else \
        f"{local.meta_disk}[{local.meta_index}]"
    if verb == "create-md":
        return [f"{name}: write fresh metadata on {local.disk} (meta-disk {meta})"
                + (", overwriting what is there" if force else
                   ", refused if metadata is there already")]
    if verb == "up":
        argv = f"python -m vigil.replication.daemon {name}"
        if config_path:
            argv += f" -c {config_path}"
        if standalone:
            argv += " --standalone"
        lines = [f"{name}: start the volume daemon: {argv}",
                 f"{name}: attach {local.disk} (meta-disk {meta})",
                 f"{name}: create {local.device} (FUSE file on a loop device)"]
        if not standalone:
            lines.append(f"{name}: connect to {cfg.peer.host} at "
                         f"{cfg.peer.address}:{cfg.peer.port}")
        return lines
    if verb == "down":
        return [f"{ask} down",
                f"{name}: demote if primary (refused while the device is in use), say "
                f"goodbye to the peer, remove {local.device}, its loop device and FUSE file"]
    if verb in _READS:
        return [f"{ask} status (read only)"]
    if verb == "wait-connect":
        return [f"{ask} status until connected or the startup timeout (read only)"]
    if verb == "become-primary":
        wanted = cfg.become_primary_on or "not set"
        return [f"{ask} primary, if become-primary-on ({wanted}) names this node"]
    if verb == "new-current-uuid":
        return [f"{ask} new-current-uuid" + (" --clear-bitmap" if clear_bitmap else ""),
                f"{name}: a new current data generation"
                + (", an empty bitmap; connected to a peer with fresh metadata as well: "
                   "both UpToDate, no initial sync" if clear_bitmap else "")]
    if verb == "detach":
        return [f"{ask} detach",
                f"{name}: flush, write bitmap and superblock, close {local.disk}; stay "
                "connected, diskless (a primary: its I/O through the peer)"]
    if verb == "attach":
        return [f"{ask} attach",
                f"{name}: open {local.disk} and its metadata (meta-disk {meta}), reconnect "
                "and resync from the peer what changed"]
    if verb == "resize":
        return [f"{ask} resize",
                f"{name}: place the metadata for the backing disk's new size, then grow to "
                "the smaller of both nodes' disks (reconnecting once); the new blocks resync "
                "from the primary"]
    what = _ASKS.get(verb)
    if what is None:
        raise ValueError(f"no dry-run plan for {verb!r}")
    options = (" --force" if force and verb == "primary" else "") + \
        (" --discard-my-data" if discard_my_data and verb == "connect" else "")
    return [f"{ask} {verb}{options}", f"{name}: {what}"]
