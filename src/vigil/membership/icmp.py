"""Ping nodes: ICMP echo to each address of `ping`/`ping6`/`ping_group`, replies reported.

One raw socket per address family (root only, like heartbeat's ping
plugin). Every `send_all()` sends one echo request to each address; a reply
carrying our identifier calls `on_reply(target name)`. A ping group is one
target with several addresses: any answer keeps it alive.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
from collections import Counter
from collections.abc import Callable

ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int) -> bytes:
    payload = b"vigil-heartbeat-ping"
    if family == socket.AF_INET6:  # the kernel fills in the ICMPv6 checksum
        return struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, ident, seq) + payload
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum(header + payload), ident,
                       seq) + payload


def parse_reply(family: int, data: bytes, ident: int) -> bool:
    """Is this an echo reply for us? (IPv4 raw sockets include the IP header.)"""
    if family == socket.AF_INET:
        if len(data) < 20:
            return False
        data = data[(data[0] & 0x0F) * 4:]
        expected = ICMP_ECHO_REPLY
    else:
        expected = ICMP6_ECHO_REPLY
    if len(data) < 8:
        return False
    kind, _code, _sum, their_ident, _seq = struct.unpack("!BBHHH", data[:8])
    return kind == expected and their_ident == ident


class Pinger:
    def __init__(self, targets: dict[str, tuple[str, ...]], on_reply: Callable[[str], None]):
        self.on_reply = on_reply
        self.ident = os.getpid() & 0xFFFF
        self.seq = 0
        self.by_address: dict[str, str] = {}
        self.counters: Counter[str] = Counter()
        self.sockets: dict[int, socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.set_targets(targets)

    def set_targets(self, targets: dict[str, tuple[str, ...]]) -> None:
        self.by_address = {str(ipaddress.ip_address(a)): name
                           for name, addresses in targets.items() for a in addresses}

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        families = {socket.AF_INET6 if ipaddress.ip_address(a).version == 6 else socket.AF_INET
                    for a in self.by_address}
        for family in families:
            if family in self.sockets:
                continue
            proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
            sock = socket.socket(family, socket.SOCK_RAW, proto)
            sock.setblocking(False)
            self.sockets[family] = sock
            loop.add_reader(sock.fileno(), self._readable, family)

    def send_all(self) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        for address in self.by_address:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = self.sockets.get(family)
            if sock is None:
                continue
            try:
                sock.sendto(echo_request(family, self.ident, self.seq), (address, 0))
                self.counters["sent"] += 1
            except OSError:
                self.counters["send_errors"] += 1

    def _readable(self, family: int) -> None:
        sock = self.sockets.get(family)
        if sock is None:
            return
        for _ in range(64):
            try:
                data, source = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["receive_errors"] += 1
                return
            address = str(ipaddress.ip_address(source[0].split("%")[0]))
            name = self.by_address.get(address)
            if name is not None and parse_reply(family, data, self.ident):
                self.counters["replies"] += 1
                self.on_reply(name)

    def close(self) -> None:
        for sock in self.sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()
