"""The lease calls against a real etcd: Debian's etcd 3.4, three members in lab hosts.

server5, server6 and server7 each run an etcd member (PIDs this test started, in
the hosts' own namespaces); the calls run inside the hosts, as a node's daemon
would make them, through `vigil.cluster.etcd`. Checked: one node alone can
create a group's key, the key goes with its holder's lease, and a call is
served while one member is down but not once the majority is.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from types import SimpleNamespace

import pytest

from vigil.testing import wait_until
from vigil.testing.pacemaker_cluster import NODES, topology

pytestmark = pytest.mark.lab

CLIENT_PORT, PEER_PORT = 2379, 2380
KEY = "/vigil/groups/IPaddr::198.51.100.100"


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


def calls(lab, node: str, *steps: list, endpoints=ENDPOINTS) -> list[dict]:
    done = lab.host(node).run([sys.executable, "-c", CALLS, json.dumps(endpoints),
                               json.dumps(list(steps))], timeout=60)
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def etcd(lab_factory):
    if shutil.which("etcd") is None:
        pytest.skip("Debian's etcd-server is not installed")
    lab = lab_factory(topology())
    cluster = ",".join(f"{n}=http://{address(n)}:{PEER_PORT}" for n in NODES)
    members = {}
    for node in NODES:
        ip = address(node)
        members[node] = lab.host(node).spawn([
            "etcd", "--name", node, "--data-dir", "/var/lib/vigil/etcd",
            "--listen-client-urls", f"http://{ip}:{CLIENT_PORT}",
            "--advertise-client-urls", f"http://{ip}:{CLIENT_PORT}",
            "--listen-peer-urls", f"http://{ip}:{PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://{ip}:{PEER_PORT}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "vigil-lab",
            "--heartbeat-interval", "100", "--election-timeout", "1000"], name="etcd")

    def healthy() -> bool:
        return all("ok" in answer for answer in calls(lab, "server5", ["holder", "/none"]))
    wait_until(healthy, 60, lambda: "etcd answering\n" + members["server5"].output()[-2000:])
    return SimpleNamespace(lab=lab, members=members)


def test_one_node_alone_creates_the_key_and_it_goes_with_the_holders_lease(etcd):
    lab = etcd.lab
    [granted] = calls(lab, "server5", ["grant", 3])
    lease5, ttl = granted["ok"]
    assert ttl == 3
    [ours] = calls(lab, "server5", ["acquire", KEY, "server5.example.com", lease5])
    assert ours["ok"] == {"ours": True, "holder": "server5.example.com"}
    # server6 with a lease of its own: the key is taken, and by whom
    [granted6] = calls(lab, "server6", ["grant", 10])
    lease6 = granted6["ok"][0]
    taken, refreshed = calls(lab, "server6", ["acquire", KEY, "server6.example.com", lease6],
                             ["keepalive", lease6])
    assert taken["ok"] == {"ours": False, "holder": "server5.example.com"}
    assert refreshed["ok"] == 10
    # server5 stops refreshing: after its 3 s TTL the store drops the lease and the key
    wait_until(lambda: calls(lab, "server6", ["holder", KEY])[0]["ok"] is None, 15,
               "the key gone with server5's lease")
    [expired] = calls(lab, "server5", ["keepalive", lease5])
    assert expired["ok"] == 0
    [mine] = calls(lab, "server6", ["acquire", KEY, "server6.example.com", lease6])
    assert mine["ok"] == {"ours": True, "holder": "server6.example.com"}
    # a revoked lease takes its key at once
    calls(lab, "server6", ["revoke", lease6])
    assert calls(lab, "server7", ["holder", KEY])[0]["ok"] is None


def test_calls_are_served_with_one_member_down_and_refused_without_a_majority(etcd):
    lab = etcd.lab
    etcd.members["server5"].signal(signal.SIGKILL)  # a process this test started
    # server5's own member is the first endpoint: the call goes to the next one
    [granted] = calls(lab, "server5", ["grant", 5])
    assert "ok" in granted, granted
    etcd.members["server6"].signal(signal.SIGKILL)
    [refused] = calls(lab, "server7", ["grant", 5])
    assert "error" in refused and "no etcd endpoint answered" in refused["error"]
