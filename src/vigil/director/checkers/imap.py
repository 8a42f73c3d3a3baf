"""imap, imaps: the server greets with * OK (over TLS for imaps); with login, LOGIN succeeds."""

from __future__ import annotations

from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    read_line,
)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def exchange(request: CheckRequest, tls: bool) -> CheckResult:
    spec = request.spec
    try:
        reader, writer = await open_stream(request, tls=tls)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        greeting = await read_line(reader)
        if not greeting.startswith(("* OK", "* PREAUTH")):
            return CheckResult.down(greeting)
        if spec.login:
            writer.write(f"v1 LOGIN {quoted(spec.login)} {quoted(spec.passwd)}\r\n".encode())
            await writer.drain()
            while True:
                line = await read_line(reader)
                if line.startswith("v1 "):
                    break
            if not line.startswith("v1 OK"):
                return CheckResult.down(line)
        writer.write(b"v2 LOGOUT\r\n")
        await writer.drain()
        return CheckResult.up(greeting)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)


async def check_imap(request: CheckRequest) -> CheckResult:
    return await exchange(request, tls=False)


async def check_imaps(request: CheckRequest) -> CheckResult:
    return await exchange(request, tls=True)
