"""Under `cluster_backend etcd`: a replicated volume is promoted only where its group's
lease is held (etcd as the quorum witness, DRBD 9's tie-breaker idea without a third copy).

The group that runs `drbddisk::RES` starts only on the node whose lease holds the
group's key, so the agent's promotion passes. A promotion asked by hand on another
node (`vigil volume primary RES`) is refused: that node may be cut off from etcd's
majority, while the holder runs the group on its own copy. A node that cannot reach
etcd cannot show it holds the lease, and is refused too; `--force` promotes anyway.
"""

from __future__ import annotations

import os

from vigil.cluster.etcd import EtcdError, EtcdGateway
from vigil.config import extension as extension_mod
from vigil.config import haresources as haresources_mod
from vigil.config.base import ConfigErrors, FileUnreadable

#: how long the store may take to say who holds the group
WITNESS_TIMEOUT = 2.0


def volume_group(resources: haresources_mod.HaResources, volume: str) -> str | None:
    """The key of the haresources group whose `drbddisk` runs `volume` (bare: `all`)."""
    for group in resources.groups:
        for ref in group.resources:
            if ref.name == "drbddisk" and (ref.args[0] if ref.args else "all") in (volume,
                                                                                    "all"):
                return group.key
    return None


def lease_refusal(volume: str, node: str, ha_dir: str = "/etc/ha.d") -> str | None:
    """Why `volume` may not be promoted on `node` now (None: it may, or no lease applies)."""
    try:
        with open(os.path.join(ha_dir, "vigil.cf"), encoding="utf-8",
                  errors="surrogateescape") as handle:
            extension = extension_mod.parse(handle.read(), handle.name)
    except FileNotFoundError:
        return None
    except (OSError, ConfigErrors, FileUnreadable) as exc:
        return f"{volume}: vigil.cf cannot be read to find the group's lease: {exc}"
    if extension.cluster_backend != "etcd":
        return None
    try:
        with open(os.path.join(ha_dir, "haresources"), encoding="utf-8",
                  errors="surrogateescape") as handle:
            resources = haresources_mod.parse(handle.read(), handle.name)
    except (OSError, ConfigErrors) as exc:
        return f"{volume}: haresources cannot be read to find the group's lease: {exc}"
    group = volume_group(resources, volume)
    if group is None:
        return None  # in no group: nothing holds it but the operator
    key = f"{extension.etcd_prefix.rstrip('/')}/groups/{group}"
    try:
        gateway = EtcdGateway(extension_mod.etcd_endpoint_list(extension.etcd_endpoints),
                              timeout=WITNESS_TIMEOUT)
        holder = gateway.holder(key)
    except (EtcdError, ValueError) as exc:
        return (f"{volume}: refusing to be primary: etcd does not say that this node holds "
                f"group {group}'s lease ({str(exc)[:200]}); use --force")
    if holder != node.lower():
        return (f"{volume}: refusing to be primary: group {group}'s lease in etcd is held "
                f"by {holder or 'nobody'}, not by {node.lower()} (cluster_backend etcd); "
                "use --force")
    return None
