"""dns: ask the real server for `request` (A, or PTR for an address); an answer
record must match `receive`. UDP, or TCP when the service is TCP."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import struct

from vigil import patterns
from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    request_text,
)

TYPE_A, TYPE_PTR = 1, 12


def question(name: str) -> tuple[str, int]:
    """The name to ask and its type: an address becomes its in-addr/ip6 PTR name."""
    try:
        return ipaddress.ip_address(name).reverse_pointer, TYPE_PTR
    except ValueError:
        return name.rstrip("."), TYPE_A


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.split("."):
        if label:
            raw = label.encode("idna")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def encode_query(ident: int, name: str, qtype: int) -> bytes:
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # RD set
    return header + encode_name(name) + struct.pack("!HH", qtype, 1)


def decode_name(message: bytes, offset: int) -> tuple[str, int]:
    labels, jumped, end, hops = [], False, offset, 0
    while True:
        length = message[offset]
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", message, offset)[0] & 0x3FFF
            if not jumped:
                end = offset + 2
            offset, jumped, hops = pointer, True, hops + 1
            if hops > 32:
                raise ValueError("name compression loop")
            continue
        if length == 0:
            if not jumped:
                end = offset + 1
            return ".".join(labels), end
        labels.append(message[offset + 1:offset + 1 + length].decode(errors="replace"))
        offset += 1 + length


def decode_answers(message: bytes, ident: int) -> list[tuple[int, str]]:
    """(type, text) of every A/AAAA/PTR answer; raises ValueError on a bad message."""
    got_id, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", message)
    if got_id != ident or not flags & 0x8000:
        raise ValueError("not an answer to our query")
    rcode = flags & 0xF
    if rcode:
        raise ValueError(f"rcode {rcode}")
    offset = 12
    for _ in range(qd):
        _, offset = decode_name(message, offset)
        offset += 4
    answers = []
    for _ in range(an):
        _, offset = decode_name(message, offset)
        rtype, _, _, length = struct.unpack_from("!HHIH", message, offset)
        offset += 10
        data = message[offset:offset + length]
        if rtype == TYPE_A and length == 4:
            answers.append((rtype, str(ipaddress.IPv4Address(data))))
        elif rtype == 28 and length == 16:
            answers.append((rtype, str(ipaddress.IPv6Address(data))))
        elif rtype == TYPE_PTR:
            answers.append((rtype, decode_name(message, offset)[0]))
        offset += length
    return answers


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def ask_udp(address: str, port: int, query: bytes,
                  local_addr: tuple[str, int] | None = None) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _OneAnswer, remote_addr=(address, port), local_addr=local_addr)
    try:
        transport.sendto(query)
        return await protocol.answer
    finally:
        transport.close()


async def ask_tcp(request: CheckRequest, query: bytes) -> bytes:
    reader, writer = await open_stream(request)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        length = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(length)
    finally:
        await close_stream(writer)


async def check(request: CheckRequest) -> CheckResult:
    name, qtype = question(request_text(request.request))
    ident = struct.unpack("!H", os.urandom(2))[0]
    query = encode_query(ident, name, qtype)
    try:
        if request.protocol == "tcp":
            message = await ask_tcp(request, query)
        else:
            message = await ask_udp(request.address, request.port, query, request.local_addr)
        answers = decode_answers(message, ident)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    for rtype, text in answers:
        if rtype not in (TYPE_A, TYPE_PTR) or not request.receive:
            continue
        try:
            if await patterns.search(request.receive, text):
                return CheckResult.up(f"{name} -> {text}")
        except patterns.PatternProblem as exc:
            return CheckResult.down(str(exc))
    shown = ", ".join(text for _, text in answers) or "no answer"
    return CheckResult.down(f"response mismatch for {name}: {shown}")
