"""LVS-NAT (`masq`) at kernel speed: the client is off-link for the real servers, whose
default route is the director (the topology LVS-NAT needs); the director DNATs each new
connection to the slot's real server and conntrack carries the rest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_lab_support import (
    HttpConnection,
    answers_and_predictions,
    nginx,
    predicted,
    start_director,
    vigil,
    wait_weights,
)

from vigil.lab.topology import HostSpec, Port, Topology, mac_for
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

VIP, VIP6 = "203.0.113.100", "2001:db8:0:2::100"
CLIENT, CLIENT6 = "203.0.113.10", "2001:db8:0:2::a"
RS1, RS2 = "198.51.100.1", "198.51.100.2"
RS1_6, RS2_6 = "2001:db8:0:1::1", "2001:db8:0:1::2"


def nat_topology() -> Topology:
    def port(segment: str, index: int, host: int, octet: int) -> Port:
        v4, v6 = ("198.51.100", "2001:db8:0:1") if segment == "lan" else \
            ("203.0.113", "2001:db8:0:2")
        return Port(segment, "eth0" if segment == "lan" or host != 1 else "eth1",
                    (f"{v4}.{octet}/24", f"{v6}::{octet:x}/64"), mac_for(index, host))

    return Topology(
        name="nat",
        segments=("lan", "wan"),
        hosts=(
            HostSpec("server5", "server5.example.com",
                     (port("lan", 0, 1, 5), port("wan", 1, 1, 5)), "director"),
            HostSpec("rs1", "rs1.example.com", (port("lan", 0, 2, 1),), "real server"),
            HostSpec("rs2", "rs2.example.com", (port("lan", 0, 3, 2),), "real server"),
            HostSpec("client", "client.example.com", (port("wan", 1, 4, 10),), "client"),
        ),
        addresses={"vip": VIP},
        description="LVS-NAT: real servers behind the director, the client in front",
    )


CONFIG = f"""checktimeout=3
checkinterval=1
autoreload=yes
logfile="/var/log/ldirectord.log"
quiescent=yes
virtual={VIP}:80
\treal={RS1}:8080 masq
\treal={RS2}:8080 masq
\tservice=http
\tscheduler=rr
\tprotocol=tcp
\tchecktype=negotiate
virtual6=[{VIP6}]:80
\treal6=[{RS1_6}]:8080 masq
\treal6=[{RS2_6}]:8080 masq
\tservice=http
\tscheduler=wrr
\tprotocol=tcp
\tchecktype=negotiate
"""


@pytest.fixture
def nat_lab(lab_factory):
    lab = lab_factory(nat_topology())
    for name in ("rs1", "rs2"):
        host = lab.host(name)
        # The real server sees the client's own address: NAT rewrites only the destination.
        nginx(host, f"{name} $remote_addr", listen="8080",
              extra="listen [::]:8080; keepalive_timeout 600s;")
        host.run(["ip", "route", "add", "default", "via", "198.51.100.5"])
        host.run(["ip", "-6", "route", "add", "default", "via", "2001:db8:0:1::5"])
    server5 = lab.host("server5")
    server5.sysctl("net.ipv4.ip_forward", 1)
    server5.sysctl("net.ipv6.conf.all.forwarding", 1)
    lab.add_address("server5", "eth1", f"{VIP}/24")
    lab.add_address("server5", "eth1", f"{VIP6}/64")
    director = start_director(lab, config=CONFIG, vips=())
    wait_weights(director, {RS1: 1, RS2: 1}, vip=VIP)
    wait_weights(director, {RS1_6: 1, RS2_6: 1}, vip=VIP6)
    wait_until(lambda: "nftables.settled" in director.read_file("/var/log/ldirectord.log"),
               15, "the director settled")
    yield lab, director
    vigil(director, "director", "stop", check=False)


def fetch(lab, address: str, source_port: int = 0) -> str:
    connection = HttpConnection(lab.host("client"), address, source_port=source_port)
    try:
        return connection.get(close=True)
    finally:
        connection.close()


def active_connections(server5, real: str) -> int:
    for line in vigil(server5, "lvs", "list", "-n").stdout.splitlines():
        words = line.split()
        if words[:2] == ["->", real]:
            return int(words[4])
    raise AssertionError(f"{real} not listed")


def test_nat_end_to_end_v4_and_v6(nat_lab):
    lab, server5 = nat_lab
    ports = range(45000, 45020)
    answers, predictions = answers_and_predictions(lab, server5, ports, VIP, CLIENT)
    assert answers == [f"{name} {CLIENT}" for name in predictions]
    assert {a.split()[0] for a in answers} == {"rs1", "rs2"}
    answers6, predictions6 = answers_and_predictions(lab, server5, ports, VIP6, CLIENT6)
    assert answers6 == [f"{name} {CLIENT6}" for name in predictions6]
    # conntrack holds the translations; the counters count connections per server.
    entries = server5.run(["conntrack", "-L", "-p", "tcp", "--dport", "80"],
                          check=False).stdout + server5.run(
        ["conntrack", "-L", "-f", "ipv6", "-p", "tcp", "--dport", "80"], check=False).stdout
    assert f"dst={VIP} " in entries and f"dst={VIP6} " in entries
    assert f"src={RS1} dst={CLIENT} sport=8080" in entries  # the reply, translated back
    lines = vigil(server5, "lvs", "list", "-n", "--stats").stdout.splitlines()
    rows = {line.split()[1]: line.split() for line in lines if line.startswith("TCP")}
    assert int(rows[f"{VIP}:80"][2]) in (20, 40, 60)
    assert int(rows[f"[{VIP6}]:80"][2]) in (20, 40, 60)


def test_quiesced_nat_server_keeps_its_connections(nat_lab):
    lab, server5 = nat_lab
    port = next(p for p in range(46000, 46200) if predicted(server5, CLIENT, p, VIP) == "rs2")
    long_lived = HttpConnection(lab.host("client"), VIP, source_port=port)
    assert long_lived.get() == f"rs2 {CLIENT}"
    assert active_connections(server5, f"{RS2}:8080") == 1  # from conntrack
    server5.write_file("/etc/ha.d/ldirectord.cf",
                       CONFIG.replace(f"real={RS2}:8080 masq", f"real={RS2}:8080 masq 0"))
    wait_weights(server5, {RS1: 1, RS2: 0}, vip=VIP)
    assert {fetch(lab, VIP).split()[0] for _ in range(10)} == {"rs1"}
    assert long_lived.get() == f"rs2 {CLIENT}"
    long_lived.close()


def _conns(server5, service: str) -> int:
    lines = vigil(server5, "lvs", "list", "-n", "--stats", "--exact").stdout.splitlines()
    return next(int(line.split()[2]) for line in lines if line.split()[1:2] == [service])


def test_nat_connections_listed_counters_zeroed_and_timeouts_refused(nat_lab):
    """vigil lvs -L -c lists conntrack's NAT entries; -Z zeroes one service's counters;
    --set is refused (conntrack's timeouts are the whole host's, not the director's)."""
    lab, server5 = nat_lab
    fetch(lab, VIP6)
    held = HttpConnection(lab.host("client"), VIP)
    try:
        name = held.get().split()[0]
        real = {"rs1": RS1, "rs2": RS2}[name]
        done = vigil(server5, "lvs", "-L", "-c", "-n")
        assert done.stderr == ""  # every service is NAT: nothing left out
        rows = done.stdout.splitlines()
        assert rows[0] == "IPVS connection entries"
        mine = [row.split() for row in rows[2:]
                if row.split()[3:4] == [f"{CLIENT}:{held.local_port}"]]
        assert [row[:1] + row[2:] for row in mine] == [
            ["TCP", "ESTABLISHED", f"{CLIENT}:{held.local_port}", f"{VIP}:80", f"{real}:8080"]]

        v6_before = _conns(server5, f"[{VIP6}]:80")
        assert _conns(server5, f"{VIP}:80") > 0 and v6_before > 0
        vigil(server5, "lvs", "-Z", "-t", f"{VIP}:80")
        assert _conns(server5, f"{VIP}:80") == 0
        assert _conns(server5, f"[{VIP6}]:80") == v6_before  # only the service named
        assert active_connections(server5, f"{real}:8080") == 1  # -Z leaves ActiveConn
        fetch(lab, VIP)
        assert _conns(server5, f"{VIP}:80") == 1
    finally:
        held.close()
    for words in (["--set", "600", "0", "0"], ["-L", "--timeout"]):
        done = vigil(server5, "lvs", *words, check=False)
        assert done.returncode == 1 and "nftables backend" in done.stderr, done
