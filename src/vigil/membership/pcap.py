"""Read heartbeat packets out of a classic pcap capture (tcpdump -w), in pure Python.

Enough of pcap, Ethernet, IPv4/IPv6 and UDP to get the payloads of a capture
of heartbeat traffic: golden tests decode the packets the real daemon sent,
and lab tests read what `tcpdump` saw on the lab's switch.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import VigilError

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113


@dataclass(frozen=True)
class UdpPacket:
    time: float
    source: str
    source_port: int
    destination: str
    destination_port: int
    payload: bytes


def read_pcap(path: str | Path) -> Iterator[UdpPacket]:
    """Every UDP datagram of a pcap file (Ethernet or Linux cooked capture)."""
    data = Path(path).read_bytes()
    if len(data) < 24 or data[:4] not in _MAGICS:
        raise VigilError(f"{path}: not a pcap capture")
    order, unit = _MAGICS[data[:4]]
    linktype = struct.unpack(order + "I", data[20:24])[0]
    pos = 24
    while pos + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack(order + "IIII", data[pos : pos + 16])
        pos += 16
        frame = data[pos : pos + captured]
        pos += captured
        packet = _udp(frame, linktype, seconds + fraction * unit)
        if packet is not None:
            yield packet


def _udp(frame: bytes, linktype: int, when: float) -> UdpPacket | None:
    if linktype == LINKTYPE_ETHERNET:
        offset, ethertype = 14, frame[12:14]
        while ethertype == b"\x81\x00":  # 802.1Q tags
            ethertype = frame[offset + 2 : offset + 4]
            offset += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        offset, ethertype = 16, frame[14:16]
    else:
        raise VigilError(f"pcap link type {linktype} is not supported")
    if ethertype == b"\x08\x00":
        header = frame[offset:]
        if len(header) < 20 or header[9] != 17:
            return None
        ihl = (header[0] & 0x0F) * 4
        source = str(ipaddress.IPv4Address(header[12:16]))
        destination = str(ipaddress.IPv4Address(header[16:20]))
        udp = header[ihl:]
    elif ethertype == b"\x86\xdd":
        header = frame[offset:]
        if len(header) < 40 or header[6] != 17:
            return None
        source = str(ipaddress.IPv6Address(header[8:24]))
        destination = str(ipaddress.IPv6Address(header[24:40]))
        udp = header[40:]
    else:
        return None
    if len(udp) < 8:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    return UdpPacket(when, source, sport, destination, dport, udp[8:length])
