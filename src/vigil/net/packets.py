"""Ethernet frames for address announcements and duplicate-address probes (pure).

IPv4: gratuitous ARP (heartbeat's send_arp sends an ARP reply "VIP is-at MAC"
and an ARP request "who-has VIP tell VIP", both broadcast) and the RFC 5227
ARP probe (sender IP 0.0.0.0) used to find another holder of an address.
IPv6: the unsolicited neighbour advertisement (RFC 4861 7.2.6, Override set)
and the DAD neighbour solicitation (RFC 4862 5.4, from ::).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
ARP_REQUEST = 1
ARP_REPLY = 2
ICMPV6_NS = 135
ICMPV6_NA = 136
IPPROTO_ICMPV6 = 58
ALL_NODES = ipaddress.IPv6Address("ff02::1")
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_SOLICITED = 0x40000000
NA_FLAG_OVERRIDE = 0x20000000


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def ethernet(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


# -- ARP ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArpPacket:
    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str
    eth_src: str = ""
    eth_dst: str = ""


def arp_frame(op: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str,
              dst: str = BROADCAST_MAC) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
    body += mac_bytes(sender_mac) + ipaddress.IPv4Address(sender_ip).packed
    body += mac_bytes(target_mac) + ipaddress.IPv4Address(target_ip).packed
    return ethernet(dst, sender_mac, ETH_P_ARP, body)


def gratuitous_arp_pair(mac: str, ip: str) -> tuple[bytes, bytes]:
    """What send_arp sends each round: a broadcast reply, then a broadcast request."""
    reply = arp_frame(ARP_REPLY, mac, ip, mac, ip)
    request = arp_frame(ARP_REQUEST, mac, ip, ZERO_MAC, ip)
    return reply, request


def handoff_arp_pair(holder_mac: str, ip: str, own_mac: str) -> tuple[bytes, bytes]:
    """send_arp's pair saying that `ip` is at `holder_mac`, sent from this host's NIC.

    The ARP sender fields name the holder; the Ethernet source stays our own MAC
    so that no switch learns the holder's MAC on our port.
    """
    reply = arp_frame(ARP_REPLY, holder_mac, ip, holder_mac, ip)
    request = arp_frame(ARP_REQUEST, holder_mac, ip, ZERO_MAC, ip)
    return (reply[:6] + mac_bytes(own_mac) + reply[12:],
            request[:6] + mac_bytes(own_mac) + request[12:])


def arp_probe(mac: str, ip: str) -> bytes:
    """RFC 5227 probe: "who has IP?" from 0.0.0.0, so no one's cache is touched."""
    return arp_frame(ARP_REQUEST, mac, "0.0.0.0", ZERO_MAC, ip)


def parse_arp(frame: bytes) -> ArpPacket | None:
    """An Ethernet/IPv4 ARP frame, or None for anything else."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        return None
    return ArpPacket(
        op=op,
        sender_mac=mac_text(frame[22:28]),
        sender_ip=str(ipaddress.IPv4Address(frame[28:32])),
        target_mac=mac_text(frame[32:38]),
        target_ip=str(ipaddress.IPv4Address(frame[38:42])),
        eth_src=mac_text(frame[6:12]),
        eth_dst=mac_text(frame[0:6]),
    )


def arp_conflict(packet: ArpPacket, ip: str, own_mac: str) -> bool:
    """Whether a received ARP frame shows another host *holding* `ip` (it answers or
    announces with it as sender).

    Unlike RFC 5227 2.1.1, another host probing for the same address at the same
    moment is not a conflict: in a cluster that is the peer starting the same group in
    a start-up split brain, and refusing on both sides left the group failed on the node
    that should keep it (measured: a 28 s failover after the failed start's retry
    timer). Both add it, and the split-brain rule keeps one within a heartbeat.
    """
    if packet.sender_mac == own_mac:
        return False
    return packet.sender_ip == ip


# -- IPv6 neighbour discovery ------------------------------------------------------------------
def solicited_node(ip: str) -> ipaddress.IPv6Address:
    low = ipaddress.IPv6Address(ip).packed[-3:]
    return ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low)


def multicast_mac(group: ipaddress.IPv6Address) -> str:
    return mac_text(b"\x33\x33" + group.packed[-4:])


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv6_icmp(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, icmp: bytes) -> bytes:
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(icmp), IPPROTO_ICMPV6)
    icmp = icmp[:2] + struct.pack("!H", _checksum(pseudo + icmp)) + icmp[4:]
    header = struct.pack("!IHBB", 6 << 28, len(icmp), IPPROTO_ICMPV6, 255)
    return header + src.packed + dst.packed + icmp


def unsolicited_na(mac: str, ip: str) -> bytes:
    """"IP is at MAC" to all nodes, Override set, Solicited clear (like send_ua)."""
    target = ipaddress.IPv6Address(ip)
    icmp = struct.pack("!BBHI", ICMPV6_NA, 0, 0, NA_FLAG_OVERRIDE) + target.packed
    icmp += struct.pack("!BB", 2, 1) + mac_bytes(mac)  # target link-layer address option
    return ethernet(multicast_mac(ALL_NODES), mac, ETH_P_IPV6, _ipv6_icmp(target, ALL_NODES, icmp))


def dad_solicitation(mac: str, ip: str) -> bytes:
    """"Who has IP?" from the unspecified address to IP's solicited-node group."""
    target = ipaddress.IPv6Address(ip)
    group = solicited_node(ip)
    icmp = struct.pack("!BBHI", ICMPV6_NS, 0, 0, 0) + target.packed
    unspecified = ipaddress.IPv6Address("::")
    return ethernet(multicast_mac(group), mac, ETH_P_IPV6, _ipv6_icmp(unspecified, group, icmp))


@dataclass(frozen=True)
class NeighbourMessage:
    kind: int  # ICMPV6_NS or ICMPV6_NA
    source: str
    target: str
    eth_src: str
    flags: int = 0


def parse_neighbour(frame: bytes) -> NeighbourMessage | None:
    """An IPv6 neighbour solicitation or advertisement, or None for anything else."""
    if len(frame) < 14 + 40 + 24 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IPV6:
        return None
    if frame[14 + 6] != IPPROTO_ICMPV6:
        return None
    icmp = frame[54:]
    if icmp[0] not in (ICMPV6_NS, ICMPV6_NA):
        return None
    return NeighbourMessage(
        kind=icmp[0],
        source=str(ipaddress.IPv6Address(frame[22:38])),
        target=str(ipaddress.IPv6Address(icmp[8:24])),
        eth_src=mac_text(frame[6:12]),
        flags=struct.unpack("!I", icmp[4:8])[0],
    )


def neighbour_conflict(message: NeighbourMessage, ip: str, own_mac: str) -> bool:
    """An advertisement for `ip` from someone else, or someone else's DAD probe for it."""
    if message.eth_src == own_mac or ipaddress.IPv6Address(message.target) != \
            ipaddress.IPv6Address(ip):
        return False
    if message.kind == ICMPV6_NA:
        return True
    return message.source == "::"


def verify_icmpv6_checksum(frame: bytes) -> bool:
    """Check the ICMPv6 checksum of an IPv6 frame (used by tests and captures)."""
    src = ipaddress.IPv6Address(frame[22:38])
    dst = ipaddress.IPv6Address(frame[38:54])
    icmp = frame[54:]
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(icmp), IPPROTO_ICMPV6)
    return _checksum(pseudo + icmp) == 0


def announcement_schedule(count: int, interval: float) -> list[tuple[float, str]]:
    """When each frame of a burst goes out: (seconds after start, "reply"|"request").

    heartbeat's send_arp -r COUNT -i INTERVAL sends COUNT rounds of a reply and
    a request, each frame INTERVAL/2 after the one before (captured: 10 rounds,
    500 ms -> 20 frames, 250 ms apart, over 4.75 s).
    """
    step = interval / 2
    frames = []
    for index in range(2 * max(count, 0)):
        frames.append((index * step, "reply" if index % 2 == 0 else "request"))
    return frames
