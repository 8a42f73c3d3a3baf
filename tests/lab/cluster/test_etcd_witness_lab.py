"""cluster_backend etcd: `vigil volume primary` promotes only where the volume's group lease
is held, asked of a real etcd (three members in lab hosts). No volume runs here: a check
that passes reaches the volume's daemon, which says the resource is not up (exit 10); a
refusal stops before it (exit 11)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vigil.config import haresources
from vigil.lab.seed import lab_file
from vigil.testing.etcd_cluster import ENDPOINTS, calls

pytestmark = pytest.mark.lab

VIGIL = str(Path(sys.executable).parent / "vigil")


def promote(lab, node: str, *extra: str):
    return lab.host(node).run([VIGIL, "volume", "primary", "mysqldata", *extra], check=False)


def test_only_the_holder_of_the_groups_lease_promotes_the_volume(etcd):
    lab = etcd.lab
    group = haresources.parse(lab_file("haresources.drbd-mysql")).groups[0].key
    for node in ("server5", "server6"):
        host = lab.host(node)
        host.write_file("/etc/drbd.conf", lab_file("drbd-mysqldata.res"))
        host.write_file("/etc/ha.d/haresources", lab_file("haresources.drbd-mysql"))
        host.write_file("/etc/ha.d/vigil.cf", "cluster_backend etcd\n"
                        f"etcd_endpoints {','.join(ENDPOINTS)}\n")
    nobody = promote(lab, "server5")
    assert nobody.returncode == 11 and "held by nobody" in nobody.stderr, nobody.stderr
    # server5 takes the group's key under a lease of its own
    [granted] = calls(lab, "server5", ["grant", 60])
    [taken] = calls(lab, "server5", ["acquire", f"/vigil/groups/{group}",
                                     "server5.example.com", granted["ok"][0]])
    assert taken["ok"]["ours"], taken
    holder = promote(lab, "server5")
    assert holder.returncode == 10, holder.stderr  # past the lease: the volume is not up
    other = promote(lab, "server6")
    assert other.returncode == 11, other.stderr
    assert "held by server5.example.com, not by server6.example.com" in other.stderr
    forced = promote(lab, "server6", "--force")
    assert forced.returncode == 10 and "without the group's lease" in forced.stderr
    # etcd's majority gone: nobody can show the lease, nobody promotes without --force
    for node in ("server6", "server7"):
        etcd.members[node].signal(9)  # processes this test started
    cut = promote(lab, "server5")
    assert cut.returncode == 11 and "etcd does not say" in cut.stderr, cut.stderr
