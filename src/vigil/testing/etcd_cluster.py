"""A three-member etcd cluster in lab hosts, and a sampler of who holds the VIP.

server5, server6 and server7 (`vigil.testing.pacemaker_cluster.topology`) each
run Debian's etcd 3.4 as a member, on the host's LAN address, its data in the
host's own /run (a tmpfs: on a busy machine a member's fsyncs to disk took longer
than the backend's store timeout, and etcd 3.4 cannot be told to skip them; a host
the tests crash is not booted again, and a member killed and started again keeps
its host's /run, so the data lasts as long as the member is needed). The lab
tests of the etcd backend share this: the store's calls
(tests/lab/cluster/test_etcd_lab.py) and vigil's daemons under
`cluster_backend etcd` (tests/lab/cluster/test_etcd_daemon_lab.py), and the
tutorial's LVS group run that way beside Pacemaker in bench/failover
(`EtcdDirectors`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.lab import Lab
from vigil.lab.host import LabProcess
from vigil.lab.seed import lab_file
from vigil.testing.director_pair import configure_real_servers
from vigil.testing.pacemaker_cluster import NODES, ServedGroup, director_files
from vigil.testing.wait import wait_until

VIGIL = str(Path(sys.executable).parent / "vigil")

CLIENT_PORT, PEER_PORT = 2379, 2380
VIP = "198.51.100.100"


def address(node: str) -> str:
    return f"198.51.100.{node.removeprefix('server')}"


ENDPOINTS = [f"http://{address(n)}:{CLIENT_PORT}" for n in NODES]

#: a node's calls, run in its host: one JSON line per call, or the error's words
CALLS = """
import json, sys
from vigil.cluster.etcd import EtcdError, EtcdGateway
gateway = EtcdGateway(json.loads(sys.argv[1]), timeout=1.0)
for call in json.loads(sys.argv[2]):
    name, *args = call
    try:
        result = getattr(gateway, name)(*args)
        print(json.dumps({"ok": result.__dict__ if hasattr(result, "__dict__") else result}))
    except EtcdError as exc:
        print(json.dumps({"error": str(exc)}))
"""


def calls(lab: Lab, node: str, *steps: list[Any],
          endpoints: list[str] = ENDPOINTS) -> list[dict[str, Any]]:
    """Store calls made from `node`'s host through `vigil.cluster.etcd`."""
    done = lab.host(node).run([sys.executable, "-c", CALLS, json.dumps(endpoints),
                               json.dumps(list(steps))], timeout=60)
    return [json.loads(line) for line in done.stdout.splitlines()]


def start_member(lab: Lab, node: str) -> LabProcess:
    """`node`'s etcd member: a new one, or the same one again (its data directory kept:
    etcd then ignores the initial-cluster settings and rejoins)."""
    ip = address(node)
    cluster = ",".join(f"{n}=http://{address(n)}:{PEER_PORT}" for n in NODES)
    return lab.host(node).spawn([
        "etcd", "--name", node, "--data-dir", "/run/vigil-etcd",
        "--listen-client-urls", f"http://{ip}:{CLIENT_PORT}",
        "--advertise-client-urls", f"http://{ip}:{CLIENT_PORT}",
        "--listen-peer-urls", f"http://{ip}:{PEER_PORT}",
        "--initial-advertise-peer-urls", f"http://{ip}:{PEER_PORT}",
        "--initial-cluster", cluster, "--initial-cluster-state", "new",
        "--initial-cluster-token", "vigil-lab",
        "--heartbeat-interval", "100", "--election-timeout", "1000",
        # a member cut off from the others does not raise its term, so when the cut heals
        # it does not depose the leader and stall the cluster (etcd 3.5's default)
        "--pre-vote"], name="etcd")


def start_members(lab: Lab) -> dict[str, LabProcess]:
    """One etcd member per node (PIDs the caller's lab tracks); returns once all answer."""
    members = {node: start_member(lab, node) for node in NODES}

    def healthy() -> bool:
        return all("ok" in answer for answer in calls(lab, "server5", ["holder", "/none"]))
    wait_until(healthy, 60, lambda: "etcd answering\n" + members["server5"].output()[-2000:])
    return members


def leader(lab: Lab) -> str | None:
    """The node whose member leads, as each member says of itself."""
    for index, node in enumerate(NODES):
        [said] = calls(lab, "server5", ["member_status", index])
        if said.get("ok", {}).get("leader"):
            return node
    return None


class Sampler:
    """Which hosts have the VIP on eth0, every 20 ms, from outside (netlink)."""

    def __init__(self, lab: Lab, vip: str = VIP):
        self.lab = lab
        self.vip = vip
        self.samples: list[tuple[float, frozenset[str]]] = []
        self.stop = threading.Event()
        self.failed: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                holders = frozenset(n for n in NODES if self.lab.carries(n, self.vip, "eth0"))
                self.samples.append((time.monotonic(), holders))
                self.stop.wait(0.02)
        except Exception as exc:  # said by holders(), not left as a stale last sample
            self.failed = exc

    def holders(self) -> frozenset[str]:
        if self.failed is not None:
            raise RuntimeError(f"the VIP sampler stopped: {self.failed!r}")
        return self.samples[-1][1] if self.samples else frozenset()

    def doubled(self) -> list[tuple[float, frozenset[str]]]:
        return [(at, holders) for at, holders in self.samples if len(holders) > 1]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@dataclass
class EtcdDirectors(ServedGroup):
    """The tutorial's LVS group (haresources.lvs: the VIP, ldirectord, httpd) run by
    `vigil heartbeat` with `cluster_backend etcd` on server5, server6 and server7, each
    also an etcd member; rs1 and rs2 behind, the client in front."""

    lab: Lab
    nodes: tuple[str, ...] = NODES
    ttl: float = 3.0
    margin: float = 1.0
    members: dict[str, LabProcess] = field(default_factory=dict)
    daemons: dict[str, LabProcess] = field(default_factory=dict)

    def start(self) -> None:
        configure_real_servers(self.lab)
        self.members = start_members(self.lab)
        names = " ".join(self.lab.host(n).hostname for n in self.nodes)
        for node in self.nodes:
            host = self.lab.host(node)
            host.write_file("/etc/ha.d/ha.cf", f"node {names}\nauto_failback on\n")
            host.write_file("/etc/ha.d/authkeys", "auth 1\n1 sha1 etcd-lab\n", mode=0o600)
            host.write_file("/etc/ha.d/haresources", lab_file("haresources.lvs"))
            host.write_file("/etc/ha.d/vigil.cf", "cluster_backend etcd\n"
                            f"etcd_endpoints {','.join(ENDPOINTS)}\n"
                            f"lease_ttl {self.ttl:g}\nlease_margin {self.margin:g}\n")
            director_files(host)
        for node in self.nodes:
            process = self.daemons[node] = self.lab.host(node).spawn(
                [VIGIL, "heartbeat", "-f"], name="vigil")
            wait_until(lambda p=process: "heartbeat.ready" in p.output() or not p.alive(),
                       20, f"vigil ready on {node}")
            if not process.alive():
                raise AssertionError(f"vigil on {node} ended:\n{process.output()[-2000:]}")

    def stop(self) -> None:
        for process in self.daemons.values():
            process.stop(timeout=20)

    def diagnose(self) -> str:
        lines = [f"VIP on: {self.holders()}"]
        for node, process in self.daemons.items():
            state = "alive" if process.alive() else "ended"
            lines.append(f"--- {node}: vigil ({state})\n{process.output()[-1500:]}")
        return "\n".join(lines)
