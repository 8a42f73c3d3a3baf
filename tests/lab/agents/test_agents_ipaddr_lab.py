"""IPaddr/IPaddr2 in lab hosts: addresses in the kernel, ARP and NA on the wire, takeover."""

import socket
import sys
import threading
import time

import pytest

from vigil.kernel.netlink import iproute
from vigil.net import packets
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

VIGIL = [sys.executable, "-m", "vigil"]


def vigil(host, *args, check=True):
    return host.run([*VIGIL, "resource", *args], check=check, timeout=60)


def kernel_addresses(host, ip):
    """(ifname label, prefixlen, broadcast) of `ip` as the host's kernel has it."""
    with iproute(host.netns_path) as ipr:
        names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
        return [(names[a["index"]], a.get("IFA_LABEL"), a["prefixlen"], a.get("IFA_BROADCAST"))
                for a in ipr.get_addr() if a.get("IFA_ADDRESS") == ip]


def neighbour_mac(host, ip):
    with iproute(host.netns_path) as ipr:
        for entry in ipr.get_neighbours():
            if entry.get("NDA_DST") == ip and entry.get("NDA_LLADDR"):
                return entry.get("NDA_LLADDR")
    return None


class Capture:
    """Frames seen by a host on one interface (AF_PACKET in its namespace)."""

    def __init__(self, host, ethertype, ifname="eth0"):
        with host.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
        self.sock.bind((ifname, ethertype))
        self.sock.settimeout(0.2)
        self.frames = []
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                frame = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.frames.append((time.monotonic(), frame))

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_ipaddr_adds_the_address_with_mask_broadcast_and_label_then_removes_it(pair_lab):
    server5 = pair_lab.host("server5")
    vip = pair_lab.address("vip")
    done = vigil(server5, "start", f"{vip}/24/eth0", "--arp-count", "1")
    assert "added on eth0" in done.stdout
    assert kernel_addresses(server5, vip) == [("eth0", "eth0:0", 24, "198.51.100.255")]
    assert vigil(server5, "status", f"IPaddr::{vip}/24/eth0").returncode == 0
    # A second alias gets the next label; IPaddr2 adds none unless asked.
    vigil(server5, "start", "198.51.100.101", "--arp-count", "1")
    assert kernel_addresses(server5, "198.51.100.101") == [("eth0", "eth0:1", 24,
                                                            "198.51.100.255")]
    vigil(server5, "start", "IPaddr2::198.51.100.102/25/eth0:web", "--arp-count", "1")
    assert kernel_addresses(server5, "198.51.100.102") == [("eth0", "eth0:web", 25,
                                                            "198.51.100.127")]
    vigil(server5, "start", "IPaddr2::203.0.113.100", "--arp-count", "1")  # findif: eth1
    assert kernel_addresses(server5, "203.0.113.100") == [("eth1", "eth1", 24,
                                                           "203.0.113.255")]
    for spec in (f"{vip}/24/eth0", "198.51.100.101", "IPaddr2::198.51.100.102/25/eth0:web",
                 "IPaddr2::203.0.113.100"):
        vigil(server5, "stop", spec)
    for ip in (vip, "198.51.100.101", "198.51.100.102", "203.0.113.100"):
        assert kernel_addresses(server5, ip) == []
    stopped = vigil(server5, "status", vip, check=False)
    assert stopped.returncode == 7 and "not_running" in stopped.stdout


def test_address_outside_every_subnet_is_refused(pair_lab):
    server5 = pair_lab.host("server5")
    failed = vigil(server5, "start", "IPaddr2::10.9.9.9", check=False)
    assert failed.returncode != 0 and "no interface" in failed.stdout


def test_gratuitous_arps_follow_heartbeats_pattern(pair_lab):
    server5, client = pair_lab.host("server5"), pair_lab.host("client")
    vip = pair_lab.address("vip")
    capture = Capture(client, packets.ETH_P_ARP)
    try:
        vigil(server5, "start", vip, "--arp-count", "4", "--arp-interval", "0.2")
        wait_until(lambda: sum(1 for _, f in capture.frames
                               if packets.parse_arp(f).sender_ip == vip) >= 8, 5,
                   "8 gratuitous ARP frames at the client")
    finally:
        capture.close()
    burst = [(t, packets.parse_arp(f)) for t, f in capture.frames
             if packets.parse_arp(f).sender_ip == vip]
    assert [p.op for _, p in burst] == [2, 1] * 4  # reply, request, alternating
    assert all(p.eth_dst == "ff:ff:ff:ff:ff:ff" and p.target_ip == vip for _, p in burst)
    assert all(p.sender_mac == server5.spec.port("lan").mac for _, p in burst)
    span = burst[-1][0] - burst[0][0]
    assert 0.5 < span < 2.5  # 7 gaps of 0.1 s, with generous margins for a busy machine


def test_client_neighbour_entry_moves_to_the_new_holder_on_takeover(pair_lab):
    server5, server6, client = (pair_lab.host(n) for n in ("server5", "server6", "client"))
    vip = pair_lab.address("vip")
    vigil(server5, "start", f"{vip}/24/eth0", "--arp-count", "1")
    client.run(["ping", "-c", "1", "-W", "2", vip])
    assert neighbour_mac(client, vip) == server5.spec.port("lan").mac
    pair_lab.crash("server5")  # the holder dies with the address still on it
    vigil(server6, "start", f"{vip}/24/eth0", "--arp-count", "3", "--arp-interval", "0.2")
    wait_until(lambda: neighbour_mac(client, vip) == server6.spec.port("lan").mac, 5,
               "the client's neighbour entry for the VIP to point at server6")
    client.run(["ping", "-c", "1", "-W", "2", vip])


def test_duplicate_address_is_refused_unless_forced(pair_lab):
    server5, server6 = pair_lab.host("server5"), pair_lab.host("server6")
    vip = pair_lab.address("vip")
    vigil(server5, "start", vip, "--arp-count", "1")
    refused = vigil(server6, "start", f"IPaddr2::{vip}/24", check=False)
    assert refused.returncode == 1
    assert f"already in use on eth0 by {server5.spec.port('lan').mac}" in refused.stdout
    assert kernel_addresses(server6, vip) == []
    forced = vigil(server6, "start", f"IPaddr2::{vip}/24", "--force", "--arp-count", "1")
    assert forced.returncode == 0 and kernel_addresses(server6, vip)


def test_the_duplicate_probe_waits_as_long_as_a_neighbours_round_trip_says(pair_lab):
    server5, server6, client = (pair_lab.host(n) for n in ("server5", "server6", "client"))
    vip = pair_lab.address("vip")
    # server6 knows a neighbour on the lan (the client): its answer times the segment
    server6.run(["ping", "-c", "1", "-W", "2", client.address("lan")])
    vigil(server5, "start", vip, "--arp-count", "1")
    refused = vigil(server6, "start", f"IPaddr2::{vip}/24", check=False)
    assert refused.returncode == 1  # the guard still catches a live holder
    assert f"already in use on eth0 by {server5.spec.port('lan').mac}" in refused.stdout
    vigil(server5, "stop", vip)
    started = vigil(server6, "start", f"IPaddr2::{vip}/24", "--arp-count", "1", "-v")
    said = started.stdout + started.stderr
    line = next(ln for ln in said.splitlines() if "address.probed" in ln)
    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
    assert fields["holder"] == "none" and fields["neighbour_rtt_ms"] != "none", line
    assert float(fields["waited_ms"]) < 200, line  # not the whole duplicate_probe_timeout
    assert kernel_addresses(server6, vip)


#: In a host: wait for the first ARP probe for an address, then remove the address (the
#: holder letting go right after a probe has seen it).
RELEASE_AFTER_PROBE = """
import socket, struct, subprocess, sys
vip, cidr = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
sock.bind(("eth0", 0))
print("ready", flush=True)
while True:
    frame = sock.recv(2048)
    if len(frame) >= 42 and frame[28:32] == bytes(4) and socket.inet_ntoa(frame[38:42]) == vip:
        break
subprocess.run(["ip", "addr", "del", cidr, "dev", "eth0"], check=True)
print("released", flush=True)
"""


def test_a_holder_that_lets_go_within_a_moment_is_not_a_duplicate(pair_lab):
    # the peer leaving a start-up split brain: it holds the address when the probe asks,
    # and releases it right after
    server5, server6 = pair_lab.host("server5"), pair_lab.host("server6")
    vip = pair_lab.address("vip")
    vigil(server5, "start", vip, "--arp-count", "1")
    releaser = server5.spawn([sys.executable, "-c", RELEASE_AFTER_PROBE, vip, f"{vip}/24"],
                             name="release")
    wait_until(lambda: "ready" in releaser.output(), 10, "the releaser listening")
    started = vigil(server6, "start", f"IPaddr2::{vip}/24", "--arp-count", "1", "-v")
    assert "released" in releaser.output()
    assert started.returncode == 0, started.stdout + started.stderr
    assert "address.holder_seen" in started.stderr
    assert kernel_addresses(server6, vip) and not kernel_addresses(server5, vip)


def test_ipv6_address_is_added_announced_and_probed(pair_lab):
    server5, server6, client = (pair_lab.host(n) for n in ("server5", "server6", "client"))
    vip6 = "2001:db8:0:1::100"
    capture = Capture(client, packets.ETH_P_IPV6)
    try:
        vigil(server5, "start", f"IPaddr2::{vip6}/64/eth0", "--arp-count", "2",
              "--arp-interval", "0.2")
        wait_until(lambda: any(
            (m := packets.parse_neighbour(f)) and m.kind == packets.ICMPV6_NA
            and m.target == vip6 for _, f in capture.frames), 5, "an unsolicited NA")
    finally:
        capture.close()
    advert = next(packets.parse_neighbour(f) for _, f in capture.frames
                  if (m := packets.parse_neighbour(f)) and m.kind == packets.ICMPV6_NA)
    assert advert.flags & packets.NA_FLAG_OVERRIDE
    assert kernel_addresses(server5, vip6) == [("eth0", None, 64, None)]
    client.run(["ping", "-6", "-c", "1", "-W", "2", vip6])
    assert neighbour_mac(client, vip6) == server5.spec.port("lan").mac
    refused = vigil(server6, "start", f"IPaddr2::{vip6}/64", check=False)
    assert refused.returncode == 1 and "already in use" in refused.stdout
    vigil(server5, "stop", f"IPaddr2::{vip6}/64/eth0")
    assert kernel_addresses(server5, vip6) == []


#: In a host: ask, as the daemon does when its peer returns, whether another host answers
#: for an address held here; print the status and what the agent said.
ASK_HOLDER_ELSEWHERE = """
import asyncio, sys
from vigil.agents.ipaddr import IPaddr
result = asyncio.run(IPaddr("IPaddr", (sys.argv[1],)).holder_elsewhere(5.0))
print(result.status.name, result.message)
"""


def test_an_address_held_here_and_on_another_host_is_found_answered_there(pair_lab):
    # the peer ran the group through a partition and holds its address too
    server5, server6 = pair_lab.host("server5"), pair_lab.host("server6")
    vip = pair_lab.address("vip")
    vigil(server6, "start", f"{vip}/24/eth0", "--arp-count", "1")

    def ask():
        return server6.run([sys.executable, "-c", ASK_HOLDER_ELSEWHERE, f"{vip}/24/eth0"],
                           timeout=30).stdout.strip()

    assert ask().startswith("NOT_RUNNING nobody else answers")
    vigil(server5, "start", f"IPaddr2::{vip}/24", "--force", "--arp-count", "1")
    said = ask()
    assert said.startswith("SUCCESS"), said
    assert server5.spec.port("lan").mac in said
    vigil(server5, "stop", f"IPaddr2::{vip}/24")
    assert ask().startswith("NOT_RUNNING")
    assert kernel_addresses(server6, vip)  # asking changed nothing here
