"""radius: an Access-Request with login/passwd/secret; any authentic reply
(accept or reject) means the server is up (as ldirectord)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct

from vigil.director.checkers.base import CheckRequest, CheckResult, describe

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE = 1, 2, 3, 11
USER_NAME, USER_PASSWORD, NAS_IDENTIFIER = 1, 2, 32


def attribute(kind: int, value: bytes) -> bytes:
    return bytes([kind, len(value) + 2]) + value


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 §5.2: pad to 16 bytes, XOR with MD5(secret + previous block)."""
    padded = password + b"\0" * (-len(password) % 16 or (16 if not password else 0))
    out, previous = b"", authenticator
    for i in range(0, len(padded), 16):
        digest = hashlib.md5(secret + previous).digest()
        block = bytes(a ^ b for a, b in zip(padded[i:i + 16], digest, strict=True))
        out += block
        previous = block
    return out


def access_request(ident: int, user: str, password: str, secret: bytes) -> tuple[bytes, bytes]:
    authenticator = os.urandom(16)
    attrs = (attribute(USER_NAME, user.encode())
             + attribute(USER_PASSWORD, hide_password(password.encode(), secret, authenticator))
             + attribute(NAS_IDENTIFIER, b"vigil-director"))
    header = struct.pack("!BBH", ACCESS_REQUEST, ident, 20 + len(attrs))
    return header + authenticator + attrs, authenticator


def authentic(reply: bytes, ident: int, authenticator: bytes, secret: bytes) -> bool:
    if len(reply) < 20 or reply[1] != ident:
        return False
    length = struct.unpack_from("!H", reply, 2)[0]
    expected = hashlib.md5(reply[:4] + authenticator + reply[20:length] + secret).digest()
    return expected == reply[4:20]


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
    spec = request.spec
    secret = spec.secret.encode()
    ident = os.urandom(1)[0]
    packet, authenticator = access_request(ident, spec.login, spec.passwd, secret)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _Reply, remote_addr=(request.address, request.port),
            local_addr=request.local_addr)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        transport.sendto(packet)
        reply = await protocol.answer
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        transport.close()
    if not authentic(reply, ident, authenticator, secret):
        return CheckResult.down("reply not authentic (wrong secret?)")
    names = {ACCESS_ACCEPT: "accept", ACCESS_REJECT: "reject", ACCESS_CHALLENGE: "challenge"}
    return CheckResult.up(f"access-{names.get(reply[0], str(reply[0]))}")
