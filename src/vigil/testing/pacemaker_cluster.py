"""A three-node Corosync 3 + Pacemaker cluster in lab hosts, configured by `vigil export`.

server5, server6 and server7 run Debian's `corosync -f` and `pacemakerd`, each
in its own host: the lab gives every host its own network namespace (so the
abstract Unix sockets of libqb's IPC, which corosync, pacemakerd and the
Pacemaker daemons talk through, are per host), its own /etc and /var (each
node's /etc/corosync, /var/lib/pacemaker/cib, /var/log/pacemaker), a fresh /run
and its own PID namespace. Two more private mounts are made here, in the host's
mount namespace: a tmpfs on /dev/shm (libqb's ring buffers, named after PIDs,
which repeat from one PID namespace to the next) and a read-only overlay of
/usr/lib/ocf/resource.d with this checkout's contrib/ocf/vigil shims on top
(what the Debian package installs there).

The configuration is the tutorial's LVS setup (ha.cf, `IPaddr::VIP/24/eth0
ldirectord httpd`, ldirectord.cf) as `vigil export pacemaker --nodes
server5,server6,server7` writes it: corosync.conf unchanged but for `deadtime 1`
in ha.cf (token 1000 ms instead of 30000), the CIB unchanged but for
`dc-deadtime` (20 s by default: how long a starting node waits for a DC before
an election) shortened to 2 s. It is each node's CIB when pacemakerd starts.
stonith-enabled=false, as exported without `fence` sections: the lab has no
fence device that could power a host off from another host's namespace.

rs1 and rs2 are the LVS-DR real servers (the tutorial's realserver.sh and nginx),
the gateway is the ping node, the client asks through the VIP. The lab test and
bench/failover share this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from vigil.data import init_script
from vigil.lab import Lab
from vigil.lab.host import Host, LabProcess
from vigil.lab.seed import lab_file
from vigil.lab.topology import HostSpec, Topology, hb_port, lan_port, seed_topology
from vigil.testing.director_pair import Prober, configure_real_servers, http_get
from vigil.testing.wait import wait_until

VIP = "198.51.100.100"
NODES = ("server5", "server6", "server7")
OCF_SHIMS = Path(__file__).resolve().parents[3] / "contrib" / "ocf"
OCF_ROOT = "/usr/lib/ocf/resource.d"
CIB = "/var/lib/pacemaker/cib/cib.xml"
PACEMAKER_LOG = "/var/log/pacemaker/pacemaker.log"
COROSYNC_LOG = "/var/log/corosync/corosync.log"
#: ha.cf's timings, those of the director pair's lab (vigil.testing.director_pair): the
#: tutorial's deadtime 30 becomes token 30000 ms, and a crash would take 30 s to see
TIMINGS = {"keepalive": "100ms", "deadtime": "1", "warntime": "500ms", "initdead": "3"}
DC_DEADTIME = "2s"


def topology() -> Topology:
    """The seed's hosts and a third director, server7 (198.51.100.7, 203.0.113.7)."""
    seed = seed_topology()
    server7 = HostSpec("server7", "server7.example.com", (lan_port(7, 7), hb_port(7, 7)),
                       "director / cluster node")
    return Topology(
        name="trio",
        segments=seed.segments,
        hosts=(*seed.hosts, server7),
        addresses=dict(seed.addresses),
        description="the seed's hosts and server7: a three-node Pacemaker cluster",
    )


def pacemaker_env() -> dict[str, str]:
    """pacemakerd's environment (the agents inherit it): `vigil` on PATH, logs in a file."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        "PCMK_logfile": PACEMAKER_LOG,
        "PCMK_logfacility": "none",
    }


def export(directory: Path, nodes: tuple[str, ...], haresources: str = "haresources.lvs",
           drbd_res: str | None = None) -> tuple[str, str]:
    """`vigil export pacemaker` of one of the tutorial's setups (its haresources file, and
    the DRBD resource file when it has one): (cib.xml, corosync.conf)."""
    hacf = "".join(f"{line.split()[0]} {TIMINGS[line.split()[0]]}\n"
                   if line.split() and line.split()[0] in TIMINGS else line + "\n"
                   for line in lab_file("ha.cf").splitlines())
    ha_d = directory / "ha.d"
    ha_d.mkdir(parents=True, exist_ok=True)
    (ha_d / "ha.cf").write_text(hacf)
    (ha_d / "haresources").write_text(lab_file(haresources))
    (ha_d / "ldirectord.cf").write_text(lab_file("ldirectord.cf"))
    drbd_conf = "/nonexistent/drbd.conf"
    if drbd_res is not None:
        (directory / "resource.res").write_text(drbd_res)
        drbd_conf = str(directory / "drbd.conf")
        Path(drbd_conf).write_text(f'include "{directory / "resource.res"}";\n')
    out = directory / "export"
    done = subprocess.run([sys.executable, "-m", "vigil", "export", "pacemaker", "--dir",
                           str(ha_d), "--drbd-conf", drbd_conf, "--nodes",
                           ",".join(nodes), "-o", str(out)],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"vigil export pacemaker failed:\n{done.stderr}")
    return (out / "cib.xml").read_text(), (out / "corosync.conf").read_text()


def with_properties(cib: str, **properties: str) -> str:
    """The CIB with cluster options set (added to cib-bootstrap-options)."""
    root = ET.fromstring(cib)
    crm_config = root.find("configuration/crm_config")
    assert crm_config is not None
    options = crm_config.find("cluster_property_set[@id='cib-bootstrap-options']")
    if options is None:
        options = ET.SubElement(crm_config, "cluster_property_set", id="cib-bootstrap-options")
    for name, value in properties.items():
        ET.SubElement(options, "nvpair", id=f"cib-bootstrap-options-{name}", name=name,
                      value=value)
    return ET.tostring(root, encoding="unicode")


def with_log_file(corosync_conf: str) -> str:
    """corosync.conf logging to a file too (there is no syslog in a lab host)."""
    return corosync_conf.replace("logging {\n", "logging {\n    to_logfile: yes\n"
                                 f"    logfile: {COROSYNC_LOG}\n    timestamp: on\n", 1)


class ServedGroup:
    """The tutorial's LVS group as the client sees it: which node has the VIP, and whether
    an HTTP request through it is answered by a real server. A cluster of lab hosts
    (`lab`, `nodes`) says what went wrong in `diagnose`."""

    lab: Lab
    nodes: tuple[str, ...]

    def diagnose(self) -> str:
        raise NotImplementedError

    def holders(self) -> list[str]:
        """The nodes whose eth0 has the VIP."""
        return [n for n in self.nodes if self.lab.carries(n, VIP, "eth0")]

    def serving(self, not_on: str | None = None) -> str | None:
        """The one node holding the VIP (not `not_on`) if the client is served through it."""
        holders = self.holders()
        if len(holders) != 1 or holders[0] == not_on:
            return None
        try:
            body = http_get(self.lab.host("client"), timeout=1.0)
        except OSError:
            return None
        return holders[0] if body in ("rs1", "rs2") else None

    def wait_for_group(self, timeout: float, not_on: str | None = None) -> str:
        """Wait for the group to run on one node (not `not_on`) and answer through the VIP."""
        found: list[str] = []

        def settled() -> bool:
            holder = self.serving(not_on)
            if holder:
                found.append(holder)
            return holder is not None

        wait_until(settled, timeout, lambda: "the group serving through the VIP\n"
                   + self.diagnose())
        return found[-1]


def director_files(host: Host) -> None:
    """The group's resources as the tutorial's directors have them."""
    host.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    host.write_file("/etc/init.d/httpd", init_script("httpd"), mode=0o755)
    host.write_file("/var/www/html/index.html",
                    f"{host.name}: the director's own httpd (fallback page)\n")


@dataclass
class PacemakerCluster(ServedGroup):
    lab: Lab
    nodes: tuple[str, ...] = NODES
    #: the tutorial's setup to export, and the text of its DRBD resource file if it has one
    haresources: str = "haresources.lvs"
    drbd_res: str | None = None
    corosync: dict[str, LabProcess] = field(default_factory=dict)
    pacemakerd: dict[str, LabProcess] = field(default_factory=dict)

    def hostname(self, name: str) -> str:
        return self.lab.host(name).hostname

    # -- set-up -------------------------------------------------------------------------------
    def configure(self) -> None:
        configure_real_servers(self.lab)
        with tempfile.TemporaryDirectory(prefix="vigil-pcmk-") as tmp:
            cib, corosync_conf = export(Path(tmp), tuple(self.hostname(n) for n in self.nodes),
                                        self.haresources, self.drbd_res)
        cib = with_properties(cib, **{"dc-deadtime": DC_DEADTIME})
        corosync_conf = with_log_file(corosync_conf)
        authkey = os.urandom(256)
        for name in self.nodes:
            self.prepare_node(self.lab.host(name), cib, corosync_conf, authkey)

    def prepare_node(self, host: Host, cib: str, corosync_conf: str, authkey: bytes) -> None:
        host.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "shm", "/dev/shm"])
        host.run(["mount", "-t", "overlay", "vigil-ocf", "-o",
                  f"lowerdir={OCF_SHIMS}:{OCF_ROOT}", OCF_ROOT])
        host.write_file("/etc/corosync/corosync.conf", corosync_conf)
        key = host.path("/etc/corosync/authkey")
        key.write_bytes(authkey)
        os.chmod(key, 0o400)
        host.run(["mkdir", "-p", "/var/log/corosync"])
        host.write_file(CIB, cib, mode=0o600)
        host.run(["chown", "hacluster:haclient", CIB])
        director_files(host)

    def start(self, timeout: float = 60.0) -> None:
        """Configure, start corosync on every node, wait for the three-node membership,
        then pacemakerd."""
        self.configure()
        for name in self.nodes:
            self.corosync[name] = self.lab.host(name).spawn(["corosync", "-f"], name="corosync")
        wait_until(lambda: all(self.members(n) == len(self.nodes) for n in self.nodes),
                   timeout, lambda: "corosync membership of every node\n" + self.diagnose())
        for name in self.nodes:
            self.pacemakerd[name] = self.lab.host(name).spawn(
                ["pacemakerd"], name="pacemakerd", env=pacemaker_env())

    def quorum_status(self, name: str) -> dict[str, str]:
        """`corosync-quorumtool -s` on a node, as {field: value} ("Quorate": "Yes", ...)."""
        host = self.lab.host(name)
        if not host.is_up():
            return {}
        done = host.run(["corosync-quorumtool", "-s"], check=False, timeout=10)
        status = {}
        for line in done.stdout.splitlines():
            key, colon, value = line.partition(":")
            if colon:
                status[key.strip()] = value.strip()
        return status

    def members(self, name: str) -> int:
        votes = self.quorum_status(name).get("Total votes", "0")
        return int(votes) if votes.isdigit() else 0

    def quorate(self, name: str) -> bool:
        return self.quorum_status(name).get("Quorate") == "Yes"

    def stop(self) -> None:
        """Kill every corosync and pacemakerd started here (the lab's teardown kills the
        Pacemaker daemons they started with the hosts)."""
        for process in [*self.pacemakerd.values(), *self.corosync.values()]:
            process.kill()

    # -- observing ------------------------------------------------------------------------------
    def diagnose(self) -> str:
        lines = [f"VIP on: {self.holders()}"]
        for name in self.nodes:
            host = self.lab.host(name)
            if not host.is_up():
                lines.append(f"--- {name}: down")
                continue
            status = host.run(["crm_mon", "-1", "-r"], check=False, timeout=20)
            lines.append(f"--- {name}: crm_mon\n{status.stdout}{status.stderr}")
            for log in (COROSYNC_LOG, PACEMAKER_LOG):
                try:
                    text = host.read_file(log)
                except OSError:
                    continue
                lines.append(f"--- {name}: {log}\n" + "\n".join(text.splitlines()[-40:]))
            for process in (self.corosync.get(name), self.pacemakerd.get(name)):
                if process is not None:
                    state = "alive" if process.alive() else "ended"
                    lines.append(f"--- {name}: {process.name} ({state})\n"
                                 f"{process.output()[-1500:]}")
        return "\n".join(lines)


def crash_and_time(cluster: ServedGroup, holder: str, timeout: float) -> tuple[str, float]:
    """Crash the node holding the group: (the node that took it, seconds from the crash to
    the client's first HTTP answer through the VIP on that node)."""
    prober = Prober(cluster.lab.host("client"))
    crashed = time.time()
    cluster.lab.crash(holder)
    prober.start()
    try:
        survivor = cluster.wait_for_group(timeout, not_on=holder)
        wait_until(lambda: prober.first_after(crashed) is not None, timeout,
                   "the prober's first answer after the crash")
        first = prober.first_after(crashed)
        assert first is not None
    finally:
        prober.stop()
    return survivor, first - crashed
