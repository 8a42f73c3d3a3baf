"""Who answers ARP for the VIP, as the client sees it.

The observer reads the VIP off the nodes' interfaces; what the client's traffic
follows is the ARP reply it gets. Every `ASK_EVERY` s the client's port sends an
RFC 5227 probe for the VIP (sender address 0.0.0.0) from a MAC of its own
(`WATCH_MAC`), so that the answers, addressed to that MAC, reach the watcher's
promiscuous socket and never the client's ARP stack: asking must not refresh the
client's neighbour entry it also reads. It keeps, for `LISTEN` s, every ARP
reply that says the VIP is at some MAC (answers and gratuitous announcements
alike); each look becomes a `Sample` of the hosts that answered, named by the
lab's MACs (a MAC the lab does not know is kept as "mac:..."). Two answerers
outside a split is a VIP on both nodes' segments. Each look also reads the
client's neighbour entry for the VIP (netlink): a cache still pointing at a host
that no longer answers is traffic sent nowhere until the entry is refreshed.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vigil.kernel.netlink import iproute
from vigil.lab import Lab
from vigil.net import packets
from vigil.net.link import open_packet_socket
from vigil.torture.checks import Sample

#: How often the client asks, and how long it listens for answers after asking.
ASK_EVERY = 0.1
LISTEN = 0.06
#: The client's port on the nodes' segment.
SEGMENT = "lan"
#: The source of the watcher's probes: no host's, so no host's kernel takes the answers.
WATCH_MAC = "02:76:6c:ff:ff:fe"
#: setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
#: Neighbour states whose address the kernel sends to (reachable, stale, delay, probe,
#: permanent, noarp).
NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x80 | 0x40


def answerers(frames: list[bytes], vip: str, names: dict[str, str]) -> frozenset[str]:
    """The hosts whose ARP replies among `frames` say they hold `vip` (pure)."""
    found = set()
    for frame in frames:
        packet = packets.parse_arp(frame)
        if packet is None or packet.op != packets.ARP_REPLY or packet.sender_ip != vip:
            continue
        found.add(names.get(packet.sender_mac, f"mac:{packet.sender_mac}"))
    return frozenset(found)


def cached(ipr: Any, vip: str, names: dict[str, str]) -> str | None:
    """The host the neighbour table's entry for `vip` names (None: no usable entry)."""
    try:
        entries = ipr.get_neighbours(dst=vip)
    except Exception:  # the client's namespace going away at the end
        return None
    for entry in entries:
        mac = entry.get_attr("NDA_LLADDR")
        if mac and entry["state"] & NUD_USABLE:
            return names.get(mac, f"mac:{mac}")
    return None


def stale_spans(cache: list[tuple[float, str | None]],
                samples: list[Sample]) -> list[tuple[float, float]]:
    """Spans in which the client's entry named a host that did not answer for the VIP
    while another did (pure; `cache` and `samples` taken at the same moments)."""
    spans: list[tuple[float, float]] = []
    begun: float | None = None
    for (at, named), sample in zip(cache, samples, strict=False):
        stale = named is not None and bool(sample.holders) and named not in sample.holders
        if stale and begun is None:
            begun = at
        elif not stale and begun is not None:
            spans.append((begun, at))
            begun = None
    if begun is not None and cache:
        spans.append((begun, cache[-1][0]))
    return spans


@dataclass(eq=False)
class ArpWatcher(threading.Thread):
    """The client's ARP view of the VIP, sampled until stopped."""

    lab: Lab
    vip: str
    client: str = "client"
    samples: list[Sample] = field(default_factory=list)
    #: (when, the host the client's neighbour entry for the VIP names, or None)
    cache: list[tuple[float, str | None]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    error: str = ""

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name="torture-arp-watcher", daemon=True)

    def run(self) -> None:
        host = self.lab.host(self.client)
        port = host.spec.port(SEGMENT)
        names = {p.mac: h.name for h in self.lab.hosts.values() for p in h.spec.ports}
        ask = packets.arp_probe(WATCH_MAC, self.vip)
        try:
            with host.entered():
                sock = open_packet_socket(port.ifname, packets.ETH_P_ARP)
                membership = struct.pack("iHH8s", socket.if_nametoindex(port.ifname),
                                         PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
        except OSError as exc:
            self.error = f"the client's ARP socket: {exc}"
            return
        with sock, iproute(host.netns_path) as ipr:
            while not self.stopping.is_set():
                at = time.monotonic()
                with contextlib.suppress(OSError):  # the client's link is down
                    sock.send(ask)
                frames: list[bytes] = []
                end = at + LISTEN
                while (left := end - time.monotonic()) > 0:
                    ready, _, _ = select.select([sock], [], [], left)
                    if not ready:
                        break
                    try:
                        frames.append(sock.recv(2048))
                    except BlockingIOError:
                        continue
                self.samples.append(Sample(at, answerers(frames, self.vip, names)))
                self.cache.append((at, cached(ipr, self.vip, names)))
                self.stopping.wait(max(0.0, at + ASK_EVERY - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:
            self.join(timeout=10)
