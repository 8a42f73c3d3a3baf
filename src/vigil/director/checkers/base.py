"""What every check gets and returns, and the socket helpers they share.

A checker is `async def check(request) -> CheckResult`. It never raises for the
server's failure (refused, reset, bad answer): that is a failed result with a
reason. Timeouts are the engine's job (`asyncio.timeout` around the call), so
a hung server fails the same way for every check type.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from dataclasses import dataclass

from vigil.director.settings import CheckSpec
from vigil.lvs.table import ServiceKey, format_endpoint

#: The most of an answer a check reads (a check is not a download).
READ_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class CheckRequest:
    """One check of one real server, with every parameter resolved."""

    address: str
    port: int  # the port to check (checkport, else the real's, else the virtual's)
    protocol: str  # tcp or udp
    spec: CheckSpec
    request: str
    receive: str
    virtual: ServiceKey
    real_port: int
    timeout: float
    #: the director's address to send from, when the kernel would pick a virtual one
    source: str | None = None

    @property
    def local_addr(self) -> tuple[str, int] | None:
        return (self.source, 0) if self.source else None

    @property
    def endpoint(self) -> str:
        return format_endpoint(self.address, self.port)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str = ""

    @classmethod
    def up(cls, message: str = "ok") -> CheckResult:
        return cls(True, message)

    @classmethod
    def down(cls, message: str) -> CheckResult:
        return cls(False, message)


def describe(exc: BaseException) -> str:
    """A short reason for a failed check, from the exception it raised."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the server"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def tls_context(spec: CheckSpec) -> ssl.SSLContext:
    """TLS for checks: verification only when asked (ldirectord checks by IP)."""
    if spec.tls_verify:
        context = ssl.create_default_context(cafile=spec.tls_ca)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_stream(
    request: CheckRequest, tls: bool = False, server_hostname: str | None = None,
    address: str | None = None, port: int | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = tls_context(request.spec) if tls else None
    hostname = server_hostname if tls else None
    if tls and hostname is None and not request.spec.tls_verify:
        hostname = None
    return await asyncio.open_connection(
        address or request.address, port or request.port, ssl=context,
        server_hostname=hostname if context else None, limit=READ_LIMIT,
        local_addr=request.local_addr,
    )


async def close_stream(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def read_line(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed by the server")
    return line.decode(errors="replace").rstrip("\r\n")


def request_text(request: str) -> str:
    """The `request=` value without the leading `/` ldirectord adds."""
    return request[1:] if request.startswith("/") else request
