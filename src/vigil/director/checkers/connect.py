"""connect: a TCP connection opens (a UDP service gets a ping check instead)."""

from __future__ import annotations

import asyncio
import socket

from vigil.director.checkers.base import CheckRequest, CheckResult, describe


async def check(request: CheckRequest) -> CheckResult:
    if request.protocol == "udp":
        from vigil.director.checkers import ping

        return await ping.check(request)
    return await connect_once(request.address, request.port)


async def connect_once(address: str, port: int) -> CheckResult:
    """Open and close one connection, without streams (the engine runs thousands)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        # RST on close: no TIME_WAIT pile-up on the director, no FIN dance.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
        return CheckResult.up("connected")
    except OSError as exc:
        return CheckResult.down(describe(exc))
    finally:
        sock.close()
