"""Director failover keeps established connections: the seed's `IPaddr ldirectord`
group under Debian's heartbeat 3.0.6 on server5 and server6 (timings shortened), each
node's `ldirectord` resource being `vigil director`. server5 crashes; heartbeat on
server6 takes the VIP and starts a fresh director; a connection the client opened
through server5 goes on through server6 to the same real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_lab_support import (
    CLIENT,
    RS1,
    RS2,
    VIP,
    HttpConnection,
    fetch,
    predicted,
    real_servers,
    weights,
)

from vigil.lab.host import Host
from vigil.lab.seed import lab_file
from vigil.testing import vigil_command, wait_until

pytestmark = pytest.mark.lab

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
HA_CF = """keepalive 100ms
deadtime 1
warntime 500ms
initdead 2
udpport 694
ucast eth1 203.0.113.5
ucast eth1 203.0.113.6
auto_failback off
node server5.example.com
node server6.example.com
logfile /var/log/ha-log
"""
HARESOURCES = f"server5.example.com IPaddr::{VIP}/24/eth0 ldirectord\n"


def configure_node(host: Host) -> None:
    """What a sysadmin puts in /etc/ha.d, with vigil's director as the ldirectord resource."""
    if not Path(HEARTBEAT).exists():
        pytest.skip("Debian's heartbeat package is not installed")
    host.write_file("/etc/ha.d/ha.cf", HA_CF)
    host.write_file("/etc/ha.d/authkeys", "auth 1\n1 sha1 vigil-lab-failover\n", mode=0o600)
    host.write_file("/etc/ha.d/haresources", HARESOURCES)
    host.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    argv = " ".join(vigil_command("director"))
    # Debian's resource.d/ldirectord is a link to the machine's /usr/sbin/ldirectord:
    # replace the link in the host's own /etc, never write through it.
    host.run(["rm", "-f", "/etc/ha.d/resource.d/ldirectord"])
    host.write_file("/etc/ha.d/resource.d/ldirectord", f'#!/bin/sh\nexec {argv} "$@"\n',
                    mode=0o755)
    machine = Path("/usr/sbin/ldirectord")
    assert not machine.exists() or machine.read_text().startswith("#!/usr/bin/perl")
    host.run("mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd "
             "/run/crm /run/resource-agents /run/lock/subsys /var/lib/heartbeat")


def start_heartbeat(host: Host):
    return host.spawn([HEARTBEAT, "-f", "-l"], name="heartbeat")


def holds_vip(host: Host) -> bool:
    return VIP in host.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout


def director_up(host: Host) -> bool:
    try:
        return weights(host) == {RS1: 1, RS2: 1}
    except OSError:
        return False


def log(host: Host, path: str) -> str:
    try:
        return host.read_file(path)
    except OSError:
        return ""


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm-standby"])
def test_a_long_lived_connection_survives_the_active_director_crashing(seed_lab, warm):
    """Cold: heartbeat's `ldirectord start` starts the director after the VIP. Warm:
    `vigil director standby` runs on both nodes first, and heartbeat 3.0.6's resource
    script (start, stop, status through the CLI) only flips the role."""
    real_servers(seed_lab)
    server5, server6 = seed_lab.host("server5"), seed_lab.host("server6")
    for node in (server5, server6):
        configure_node(node)
        if warm:
            node.run(vigil_command("director", "standby"))
    start_heartbeat(server5)
    wait_until(lambda: holds_vip(server5) and director_up(server5), 60,
               lambda: "server5 active\n" + log(server5, "/var/log/ha-log")[-2000:])
    start_heartbeat(server6)
    wait_until(lambda: "nftables.settled" in log(server5, "/var/log/ldirectord.log"), 15,
               "server5's data path settled")
    wait_until(lambda: "Link server6.example.com:eth1 up" in log(server5, "/var/log/ha-log"),
               30, "server5 hears server6")
    wait_until(lambda: "Link server5.example.com:eth1 up" in log(server6, "/var/log/ha-log"),
               30, "server6 hears server5")
    if warm:
        # heartbeat sees the resource where the VIP is only: server6's standby is "stopped"
        assert server6.run(vigil_command("director", "status"), check=False).returncode == 3
        wait_until(lambda: "nftables.settled" in log(server6, "/var/log/ldirectord.log"), 15,
                   "server6's standby settled")

    # A client connection through server5, to each real server.
    ports = {name: next(p for p in range(47000, 47300) if predicted(server5, CLIENT, p) == name)
             for name in ("rs1", "rs2")}
    client = seed_lab.host("client")
    connections = {name: HttpConnection(client, VIP, source_port=port, timeout=30)
                   for name, port in ports.items()}
    assert {name: c.get() for name, c in connections.items()} == {"rs1": "rs1", "rs2": "rs2"}

    seed_lab.crash("server5")
    # heartbeat on server6 declares server5 dead, takes IPaddr and starts the director.
    wait_until(lambda: holds_vip(server6), 30,
               lambda: "server6 takeover\n" + log(server6, "/var/log/ha-log")[-2000:])
    wait_until(lambda: "nftables.commit" in log(server6, "/var/log/ldirectord.log"), 30,
               "server6's director holds the VIP's services")
    if warm:
        wait_until(lambda: server6.run(vigil_command("director", "status"),
                                       check=False).returncode == 0, 30,
                   "heartbeat's ldirectord start activating server6's standby")
    # The connections carry on (their packets may meet the new director while it
    # is still learning: then TCP retransmits them a moment later).
    assert {name: c.get() for name, c in connections.items()} == {"rs1": "rs1", "rs2": "rs2"}
    assert "nftables.settled" in log(server6, "/var/log/ldirectord.log") or \
        wait_until(lambda: "nftables.settled" in log(server6, "/var/log/ldirectord.log"), 15,
                   "server6 settled")
    assert [c.get() for c in connections.values()] == ["rs1", "rs2"]
    # and new ones too, once server6's director has checked both real servers up: one
    # from a source port its table sends to each (ephemeral ports could all land on one)
    wait_until(lambda: weights(server6) == {RS1: 1, RS2: 1}, 30,
               lambda: f"both real servers up on server6 ({weights(server6)})")
    fresh = {name: next(p for p in range(47300, 47600) if predicted(server6, CLIENT, p) == name)
             for name in ("rs1", "rs2")}
    assert {name: fetch(seed_lab, source_port=port) for name, port in fresh.items()} == \
        {"rs1": "rs1", "rs2": "rs2"}
    for connection in connections.values():
        connection.close()


def test_writing_a_host_file_never_writes_through_a_link(seed_lab, tmp_path):
    """The hazard the resource script above meets: a link in a host's /etc to a file
    the machine shares with every host."""
    shared = tmp_path / "shared-file"
    shared.write_text("the machine's\n")
    server5 = seed_lab.host("server5")
    server5.run(["ln", "-s", str(shared), "/etc/vigil-link-test"])
    server5.write_file("/etc/vigil-link-test", "the host's\n")
    assert shared.read_text() == "the machine's\n"
    assert server5.read_file("/etc/vigil-link-test") == "the host's\n"
