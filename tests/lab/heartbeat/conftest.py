"""Fixtures for the heartbeat lab tests: configs, daemons, responders, the client's view."""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vigil.lab import Lab, LabProcess, pair_topology
from vigil.testing import wait_until
from vigil.testing.responder import NAME_RESPONDER

VIGIL = str(Path(sys.executable).parent / "vigil")
VIP = "198.51.100.100"
NODES = ("server5", "server6")
HOSTNAMES = {"server5": "server5.example.com", "server6": "server6.example.com"}
KEY = "vigil-lab-secret"

HACF = """keepalive {keepalive}
deadtime {deadtime}
warntime {warntime}
initdead {initdead}
udpport 694
{media}
auto_failback {auto_failback}
node server5.example.com
node server6.example.com
{extra}
"""
MEDIA = "bcast eth0\nucast eth1 203.0.113.5\nucast eth1 203.0.113.6"
#: heartbeat's IPaddr does not probe for a duplicate address: neither do these tests
#: (vigil's default refuses to add an address another host still answers for).
VIGIL_CF = "duplicate_probe off\n"

RESPONDER = NAME_RESPONDER


@dataclass
class HbPair:
    """server5 and server6 running a heartbeat daemon each, a client, the gateway (ping)."""

    lab: Lab
    keepalive: str = "100ms"
    deadtime: str = "1"
    warntime: str = "500ms"
    initdead: str = "3"
    auto_failback: str = "on"
    media: str = MEDIA
    extra: str = ""
    haresources: str = f"server5.example.com IPaddr::{VIP}/24/eth0\n"
    daemons: dict[str, LabProcess] = field(default_factory=dict)
    #: the web responder's code (it answers with its host's short name)
    responder_code: str = RESPONDER

    def hacf(self) -> str:
        return HACF.format(keepalive=self.keepalive, deadtime=self.deadtime,
                           warntime=self.warntime, initdead=self.initdead, media=self.media,
                           auto_failback=self.auto_failback, extra=self.extra)

    def configure(self, name: str, authkeys: str = f"auth 1\n1 sha1 {KEY}\n") -> None:
        host = self.lab.host(name)
        host.write_file("/etc/ha.d/ha.cf", self.hacf())
        host.write_file("/etc/ha.d/authkeys", authkeys, mode=0o600)
        host.write_file("/etc/ha.d/haresources", self.haresources)
        host.write_file("/etc/ha.d/vigil.cf", VIGIL_CF)

    def start(self, name: str, configure: bool = True) -> LabProcess:
        if configure:
            self.configure(name)
        process = self.lab.host(name).spawn([VIGIL, "heartbeat", "-f"], name="vigil")
        self.daemons[name] = process
        wait_until(lambda: "heartbeat.ready" in process.output() or not process.alive(), 20,
                   f"vigil heartbeat ready on {name}")
        assert process.alive(), process.output()
        return process

    def start_both(self) -> None:
        for name in NODES:
            self.responder(name)
        for name in NODES:
            self.start(name)
        self.wait_holders({"server5"}, 20)
        self.wait_client("server5")

    def broadcast_addresses(self, name: str) -> None:
        """heartbeat's bcast sends to the interface's broadcast address: give it one."""
        host = self.lab.host(name)
        for ifname, segment in (("eth0", "lan"), ("eth1", "hb")):
            cidr = f"{host.address(segment)}/24"
            host.run(f"ip addr del {cidr} dev {ifname} && ip addr add {cidr} brd + dev {ifname}")

    def responder(self, name: str) -> LabProcess:
        process = self.lab.host(name).spawn([sys.executable, "-c", RESPONDER], name="web")
        wait_until(lambda: "ready" in process.output(), 10, f"responder on {name}")
        return process

    # -- observations ----------------------------------------------------------------------
    def holders(self) -> set[str]:
        return {name for name in NODES if self.lab.carries(name, VIP)}

    def wait_holders(self, expected: set[str], timeout: float) -> None:
        wait_until(lambda: self.holders() == expected, timeout,
                   lambda: f"VIP on {sorted(expected)} (now on {sorted(self.holders())})\n"
                   + self.logs())

    def client_answer(self) -> str | None:
        try:
            sock = self.lab.host("client").connect(VIP, 80, timeout=0.3)
        except OSError:
            return None
        try:
            sock.settimeout(0.5)
            return sock.recv(64).decode().strip() or None
        except OSError:
            return None
        finally:
            sock.close()

    def wait_client(self, name: str, timeout: float = 15) -> None:
        wait_until(lambda: self.client_answer() == name, timeout,
                   lambda: f"the client reaching the VIP on {name} "
                   f"(answer: {self.client_answer()})\n" + self.logs())

    def status(self, name: str) -> dict:
        done = self.lab.host(name).run([VIGIL, "status", "--json"], timeout=20)
        return json.loads(done.stdout)

    def peer(self, name: str) -> dict:
        other = HOSTNAMES[NODES[1 - NODES.index(name)]]
        return next(n for n in self.status(name)["nodes"] if n["name"] == other)

    # -- a third host on the lan ---------------------------------------------------------
    def capture(self, host: str, count: int, timeout: float = 10) -> list[bytes]:
        """Heartbeat datagrams as a third host on the lan receives them (broadcasts)."""
        with self.lab.host(host).entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", 694))
            sock.settimeout(timeout)
            packets: list[bytes] = []
            while len(packets) < count:
                packets.append(sock.recv(65535))
            return packets
        finally:
            sock.close()

    def inject(self, host: str, packets: list[bytes], address: str) -> None:
        """Send datagrams to udpport from a host (a broadcast address allowed)."""
        with self.lab.host(host).entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            for packet in packets:
                sock.sendto(packet, (address, 694))
        finally:
            sock.close()

    def logs(self) -> str:
        return "\n".join(f"----- {name}\n{p.output()[-4000:]}" for name, p in
                         self.daemons.items())


@pytest.fixture
def hb(lab_factory) -> HbPair:
    """The pair lab with vigil's heartbeat configured (not started) on both directors."""
    return HbPair(lab_factory(pair_topology()))
