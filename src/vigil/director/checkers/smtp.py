"""smtp, submission: the server greets with 220 and answers HELO; then QUIT."""

from __future__ import annotations

import socket

from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    read_line,
)


async def read_reply(reader) -> tuple[int, str]:
    """One (possibly multi-line) SMTP-style reply: code and last line."""
    while True:
        line = await read_line(reader)
        if len(line) < 3 or not line[:3].isdigit():
            raise ValueError(f"not a reply: {line[:60]!r}")
        if len(line) == 3 or line[3] != "-":
            return int(line[:3]), line


async def check(request: CheckRequest) -> CheckResult:
    try:
        reader, writer = await open_stream(request)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        code, greeting = await read_reply(reader)
        if code != 220:
            return CheckResult.down(greeting)
        writer.write(f"HELO {socket.gethostname()}\r\n".encode())
        await writer.drain()
        code, line = await read_reply(reader)
        if code != 250:
            return CheckResult.down(line)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return CheckResult.up(greeting)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)
