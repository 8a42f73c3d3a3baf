"""pgsql: log in (trust, cleartext, md5 or SCRAM-SHA-256) and run `request`;
at least one row must come back. A small exchange of the v3 protocol."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    request_text,
)


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def startup(user: str, database: str) -> bytes:
    body = struct.pack("!I", 196608)
    for key, value in (("user", user), ("database", database), ("application_name", "vigil")):
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode() + b"\0"


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802/7677), channel binding off."""

    def __init__(self, password: str):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def first(self) -> bytes:
        data = ("n,," + self.first_bare).encode()
        return b"SCRAM-SHA-256\0" + struct.pack("!I", len(data)) + data

    def final(self, server_first: bytes) -> bytes:
        fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
        nonce, salt, rounds = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
        if not nonce.startswith(self.nonce):
            raise ValueError("SCRAM nonce mismatch")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, rounds)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.digest(stored, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


async def check(request: CheckRequest) -> CheckResult:
    spec = request.spec
    if not spec.login or not spec.database:
        return CheckResult.down("pgsql check needs login and database")
    try:
        reader, writer = await open_stream(request)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        writer.write(startup(spec.login, spec.database))
        scram: Scram | None = None
        rows = 0
        queried = False
        while True:
            kind = await reader.readexactly(1)
            length = struct.unpack("!I", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
            if kind == b"E":
                fields = {p[:1]: p[1:] for p in body.split(b"\0") if p}
                return CheckResult.down(fields.get(b"M", b"error").decode(errors="replace"))
            if kind == b"R":
                code = struct.unpack_from("!I", body)[0]
                if code == 3:
                    writer.write(message(b"p", spec.passwd.encode() + b"\0"))
                elif code == 5:
                    writer.write(message(b"p", md5_password(spec.login, spec.passwd, body[4:8])))
                elif code == 10:
                    scram = Scram(spec.passwd)
                    writer.write(message(b"p", scram.first()))
                elif code == 11 and scram is not None:
                    writer.write(message(b"p", scram.final(body[4:])))
                elif code not in (0, 12):
                    return CheckResult.down(f"unsupported authentication method {code}")
            elif kind == b"Z" and not queried:
                queried = True
                writer.write(message(b"Q", request_text(request.request).encode() + b"\0"))
            elif kind == b"D":
                rows += 1
            elif kind == b"Z":
                writer.write(message(b"X", b""))
                break
            await writer.drain()
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)
    if rows < 1:
        return CheckResult.down("query returned no rows")
    return CheckResult.up(f"{rows} rows")
