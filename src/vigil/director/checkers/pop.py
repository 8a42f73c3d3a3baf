"""pop, pops: the server says +OK (over TLS for pops); with login, USER/PASS succeed."""

from __future__ import annotations

from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    read_line,
)


async def exchange(request: CheckRequest, tls: bool) -> CheckResult:
    spec = request.spec
    try:
        reader, writer = await open_stream(request, tls=tls)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        greeting = await read_line(reader)
        if not greeting.startswith("+OK"):
            return CheckResult.down(greeting)
        if spec.login:
            for command in (f"USER {spec.login}", f"PASS {spec.passwd}"):
                writer.write(command.encode() + b"\r\n")
                await writer.drain()
                answer = await read_line(reader)
                if not answer.startswith("+OK"):
                    return CheckResult.down(answer)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return CheckResult.up(greeting)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)


async def check_pop(request: CheckRequest) -> CheckResult:
    return await exchange(request, tls=False)


async def check_pops(request: CheckRequest) -> CheckResult:
    return await exchange(request, tls=True)
