"""ping: an ICMP (or ICMPv6) echo gets its reply. Raw sockets (root), or the
unprivileged ICMP datagram socket where ping_group_range allows it."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

from vigil.director.checkers.base import CheckRequest, CheckResult, describe

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, sequence: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST[family], 0, 0, ident, sequence)
    if family == 6:  # the kernel fills in the ICMPv6 checksum
        return header + payload
    return struct.pack("!BBHHH", ECHO_REQUEST[family], 0,
                       checksum(header + payload), ident, sequence) + payload


def open_socket(family: int) -> tuple[socket.socket, bool]:
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if family == 6 else socket.IPPROTO_ICMP
    try:
        return socket.socket(af, socket.SOCK_RAW, proto), True
    except PermissionError:
        return socket.socket(af, socket.SOCK_DGRAM, proto), False


async def check(request: CheckRequest) -> CheckResult:
    family = 6 if ":" in request.address else 4
    try:
        sock, raw = open_socket(family)
    except OSError as exc:
        return CheckResult.down(describe(exc))
    loop = asyncio.get_running_loop()
    ident = os.getpid() & 0xFFFF
    sequence = int.from_bytes(os.urandom(2), "big")
    payload = os.urandom(16)
    try:
        sock.setblocking(False)
        if request.source:
            sock.bind((request.source, 0))
        await loop.sock_sendto(sock, echo_request(family, ident, sequence, payload),
                               (request.address, 0))
        while True:
            data, source = await loop.sock_recvfrom(sock, 2048)
            if raw and family == 4:
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) < 8 or source[0] != request.address:
                continue
            kind, _, _, got_ident, got_sequence = struct.unpack_from("!BBHHH", data)
            if kind != ECHO_REPLY[family] or got_sequence != sequence:
                continue
            if raw and got_ident != ident:
                continue
            if data[8:] == payload:
                return CheckResult.up("echo reply")
    except OSError as exc:
        return CheckResult.down(describe(exc))
    finally:
        sock.close()
