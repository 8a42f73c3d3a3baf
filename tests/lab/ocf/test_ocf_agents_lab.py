"""ocf:vigil:director and ocf:vigil:realserver under Debian's ocf-tester, inside lab hosts.

ocf-tester starts, monitors and stops the resource for real (twice, with a
second start and stop of each), so it runs inside a lab host: the director's
daemon, the VIP on lo and the ARP sysctls all belong to that host's namespaces.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from vigil.lab import Topology
from vigil.lab.topology import HostSpec, Port, mac_for
from vigil.testing import vigil_command

pytestmark = pytest.mark.lab

SHIMS = Path(__file__).resolve().parents[3] / "contrib" / "ocf" / "vigil"
OCF_TESTER = "/usr/sbin/ocf-tester"
VIGIL = f"{sys.executable} -m vigil"
VIP = "198.51.100.100"
VIP6 = "2001:db8:0:1::100"
RS1 = "198.51.100.1"

DIRECTOR_CF = f"""checktimeout=3
checkinterval=1
logfile="/var/log/ldirectord.log"
quiescent=yes
virtual={VIP}:80
\treal={RS1}:80 gate
\tservice=http
\tscheduler=rr
\tprotocol=tcp
\tchecktype=connect
"""


def small_topology() -> Topology:
    def port(octet: int, host: int) -> Port:
        return Port("lan", "eth0", (f"198.51.100.{octet}/24", f"2001:db8:0:1::{octet:x}/64"),
                    mac_for(0, host))

    return Topology(
        name="ocf",
        segments=("lan",),
        hosts=(HostSpec("server5", "server5.example.com", (port(5, 1),), "director"),
               HostSpec("rs1", "rs1.example.com", (port(1, 2),), "real server")),
        addresses={"vip": VIP},
        description="a director and a real server for the OCF agents",
    )


@pytest.fixture
def lab(lab_factory):
    if not shutil.which(OCF_TESTER):
        pytest.skip("ocf-tester (resource-agents) is not installed")
    return lab_factory(small_topology())


def ocf_tester(host, agent: str, *params: str):
    """Run ocf-tester in the host; OCF_RESKEY_vigil also set for the meta-data checks it
    runs before it exports the -o parameters (one of them as nobody)."""
    argv = [OCF_TESTER, "-n", f"test_{agent}", "-o", f"vigil={VIGIL}"]
    for param in params:
        argv += ["-o", param]
    done = host.run([*argv, str(SHIMS / agent)], check=False, timeout=240,
                    env={"OCF_RESKEY_vigil": VIGIL})
    print(done.stdout, done.stderr)
    return done


def agent(host, name: str, action: str, **params: str):
    env = {"OCF_RESKEY_vigil": VIGIL, "OCF_RESOURCE_INSTANCE": f"test_{name}",
           **{f"OCF_RESKEY_{k}": v for k, v in params.items()}}
    return host.run([str(SHIMS / name), action], check=False, env=env)


def test_director_passes_ocf_tester(lab):
    server5 = lab.host("server5")
    lab.add_address("server5", "eth0", f"{VIP}/24")
    server5.write_file("/etc/ha.d/ldirectord.cf", DIRECTOR_CF)
    done = ocf_tester(server5, "director", "configfile=ldirectord.cf", "backend=userspace")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed all tests" in done.stdout
    # ocf-tester ends with a stop: nothing is left running
    status = server5.run(vigil_command("director", "status"), check=False)
    assert status.returncode == 3, status.stdout


def test_director_monitor_follows_vigil_director(lab):
    server5 = lab.host("server5")
    lab.add_address("server5", "eth0", f"{VIP}/24")
    server5.write_file("/etc/ha.d/ldirectord.cf", DIRECTOR_CF)
    params = {"configfile": "ldirectord.cf", "backend": "userspace"}
    assert agent(server5, "director", "monitor", **params).returncode == 7
    server5.run(vigil_command("director", "--backend", "userspace", "start"))
    try:
        assert agent(server5, "director", "monitor", **params).returncode == 0
    finally:
        server5.run(vigil_command("director", "stop"))
    assert agent(server5, "director", "monitor", **params).returncode == 7


def test_director_validate_all(lab):
    server5 = lab.host("server5")
    missing = {"configfile": "/etc/ha.d/absent.cf", "backend": "userspace"}
    assert agent(server5, "director", "validate-all", **missing).returncode == 5
    assert agent(server5, "director", "monitor", **missing).returncode == 7
    assert agent(server5, "director", "stop", **missing).returncode == 0
    server5.write_file("/etc/ha.d/broken.cf", "virtual=not-an-address\n\treal=\n")
    broken = {"configfile": "broken.cf", "backend": "userspace"}
    assert agent(server5, "director", "validate-all", **broken).returncode == 6
    server5.write_file("/etc/ha.d/ldirectord.cf", DIRECTOR_CF)
    wrong = {"configfile": "ldirectord.cf", "backend": "carrier-pigeon"}
    assert agent(server5, "director", "validate-all", **wrong).returncode == 6


def sysctl(host, iface: str, key: str) -> str:
    return host.run(["cat", f"/proc/sys/net/ipv4/conf/{iface}/{key}"]).stdout.strip()


def test_realserver_passes_ocf_tester_and_gives_back_the_settings(lab):
    rs1 = lab.host("rs1")
    before = {(i, k): sysctl(rs1, i, k) for i in ("all", "eth0")
              for k in ("arp_ignore", "arp_announce")}
    done = ocf_tester(rs1, "realserver", f"vip={VIP} {VIP6}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed all tests" in done.stdout
    assert not any(a.startswith((VIP + "/", VIP6 + "/")) for a in lab.addresses("rs1", "lo"))
    assert {(i, k): sysctl(rs1, i, k) for (i, k) in before} == before


def test_realserver_monitor_and_validate(lab):
    rs1 = lab.host("rs1")
    assert agent(rs1, "realserver", "validate-all", vip="198.51.100.300").returncode == 6
    assert agent(rs1, "realserver", "validate-all", vip=VIP, dev="eth9").returncode == 5
    assert agent(rs1, "realserver", "validate-all").returncode == 6  # vip is required
    assert agent(rs1, "realserver", "monitor", vip=VIP).returncode == 7
    assert agent(rs1, "realserver", "start", vip=VIP, dev="eth0").returncode == 0
    try:
        assert f"{VIP}/32" in lab.addresses("rs1", "lo")
        assert sysctl(rs1, "eth0", "arp_ignore") == "1"
        assert agent(rs1, "realserver", "monitor", vip=VIP, dev="eth0").returncode == 0
    finally:
        assert agent(rs1, "realserver", "stop", vip=VIP, dev="eth0").returncode == 0
    assert agent(rs1, "realserver", "monitor", vip=VIP, dev="eth0").returncode == 7
