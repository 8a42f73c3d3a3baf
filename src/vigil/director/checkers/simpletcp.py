"""simpletcp: send `request` (\\n expanded), half-close, and read lines until one
matches `receive`."""

from __future__ import annotations

from vigil import patterns
from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    request_text,
)


async def check(request: CheckRequest) -> CheckResult:
    text = request_text(request.request).replace("\\n", "\n")
    try:
        reader, writer = await open_stream(request)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        writer.write(text.encode())
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        while line := await reader.readline():
            decoded = line.decode(errors="replace")
            if await patterns.search(request.receive, decoded):
                return CheckResult.up(decoded.strip()[:120])
        return CheckResult.down(f"no line matched {request.receive!r}")
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)
