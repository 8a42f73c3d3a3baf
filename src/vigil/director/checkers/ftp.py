"""ftp: log in (anonymous by default), passive mode, fetch `request`; its content
must match `receive`."""

from __future__ import annotations

import asyncio
import re
import socket

from vigil import patterns
from vigil.director.checkers.base import (
    READ_LIMIT,
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
    request_text,
)
from vigil.director.checkers.smtp import read_reply


async def command(reader, writer, line: str, expect: tuple[int, ...]) -> str:
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    code, text = await read_reply(reader)
    if code not in expect:
        raise ValueError(text)
    return text


def passive_port(reply: str) -> int:
    numbers = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", reply)
    if numbers is None:
        raise ValueError(f"bad PASV reply {reply!r}")
    high, low = int(numbers.group(5)), int(numbers.group(6))
    return high * 256 + low


async def check(request: CheckRequest) -> CheckResult:
    spec = request.spec
    login = spec.login or "anonymous"
    password = spec.passwd or f"vigil@{socket.gethostname()}"
    try:
        reader, writer = await open_stream(request)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        code, greeting = await read_reply(reader)
        if code != 220:
            return CheckResult.down(greeting)
        writer.write(f"USER {login}\r\n".encode())
        await writer.drain()
        code, text = await read_reply(reader)
        if code == 331:
            await command(reader, writer, f"PASS {password}", (230, 202))
        elif code != 230:
            return CheckResult.down(text)
        await command(reader, writer, "CWD /", (250,))
        await command(reader, writer, "TYPE I", (200,))
        port = passive_port(await command(reader, writer, "PASV", (227,)))
        data_reader, data_writer = await asyncio.open_connection(request.address, port,
                                                                 local_addr=request.local_addr)
        try:
            await command(reader, writer, f"RETR {request_text(request.request)}", (125, 150))
            content = await data_reader.read(READ_LIMIT)
            while (chunk := await data_reader.read(READ_LIMIT)) and len(content) < READ_LIMIT:
                content += chunk
        finally:
            await close_stream(data_writer)
        await read_reply(reader)  # 226 transfer complete
        writer.write(b"QUIT\r\n")
        if await patterns.search(request.receive, content.decode(errors="replace")):
            return CheckResult.up(f"fetched {len(content)} bytes")
        return CheckResult.down(f"content does not match {request.receive!r}")
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)
