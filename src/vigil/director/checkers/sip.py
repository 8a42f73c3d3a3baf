"""sip: send OPTIONS (login as the URI) over the service's protocol; the reply
must be `SIP/2.0 200 OK`."""

from __future__ import annotations

import asyncio
import os
import socket

from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
)


def options(request: CheckRequest, local: str, local_port: int, transport: str) -> bytes:
    uri = request.spec.login or f"vigil@{socket.gethostname()}"
    call_id = os.urandom(8).hex()
    return (
        f"OPTIONS sip:{uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local}:{local_port};branch=z9hG4bK{os.urandom(6).hex()}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <sip:{uri}>\r\n"
        f"From: <sip:{uri}>;tag={os.urandom(4).hex()}\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 63104 OPTIONS\r\n"
        f"Contact: <sip:{uri}>\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def judge(reply: bytes) -> CheckResult:
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    if status.startswith("SIP/2.0 200 OK"):
        return CheckResult.up(status)
    return CheckResult.down(status or "no reply")


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def check(request: CheckRequest) -> CheckResult:
    try:
        if request.protocol == "udp":
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.create_datagram_endpoint(
                _Reply, remote_addr=(request.address, request.port),
                local_addr=request.local_addr)
            try:
                local, port = transport.get_extra_info("sockname")[:2]
                transport.sendto(options(request, local, port, "UDP"))
                return judge(await protocol.answer)
            finally:
                transport.close()
        reader, writer = await open_stream(request)
        try:
            local, port = writer.get_extra_info("sockname")[:2]
            writer.write(options(request, local, port, "TCP"))
            await writer.drain()
            return judge(await reader.readuntil(b"\r\n"))
        finally:
            await close_stream(writer)
    except Exception as exc:
        return CheckResult.down(describe(exc))
