"""Small servers and clients on loopback for the director's unit tests (userspace proxy,
its workers, the lvs verbs, alerts): free ports, named line servers, one-line asks."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from vigil.lvs.reconcile import reconcile
from vigil.lvs.table import RealServer, ServiceKey, Table, VirtualService


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def named_server(name: str, host: str = "127.0.0.2") -> tuple[asyncio.Server, int]:
    """A line server that answers every line with `name:line`: tells who served."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(f"{name}:{line.decode()}".encode())
            await writer.drain()
        writer.close()
    server = await asyncio.start_server(handler, host, 0)
    return server, int(server.sockets[0].getsockname()[1])


async def ask(port: int, text: str = "hi", host: str = "127.0.0.1") -> str:
    """One line to `host:port`, one line back (5 s at most)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"{text}\n".encode())
    answer = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    writer.close()
    return answer


async def apply(backend: Any, desired: Table) -> None:
    """Bring a backend's table to `desired`, as the director does."""
    await backend.apply(reconcile(desired, await backend.read()), desired)


def service(vport: int, reals: list[RealServer] | tuple[RealServer, ...],
            scheduler: str = "rr", **options: Any) -> VirtualService:
    """A TCP service on 127.0.0.1:`vport`."""
    return VirtualService(ServiceKey.tcp("127.0.0.1", vport), scheduler=scheduler,
                          reals=tuple(reals), **options)
