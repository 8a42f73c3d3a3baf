"""The daemon's control socket: one JSON request line, one JSON answer line.

The socket lives in the host's /run (`/run/vigil/volume/NAME/control.sock`),
so each lab host (and each real machine) talks to its own daemon.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.replication.states import NotConfigured

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def socket_path(run_dir: Path) -> Path:
    return run_dir / "control.sock"


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    path.unlink(missing_ok=True)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            request = json.loads(line or b"{}")
            try:
                answer = await handler(request)
                answer.setdefault("ok", True)
                answer.setdefault("code", 0)
            except VigilError as exc:
                answer = {"ok": False, "code": exc.exit_code, "message": str(exc)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ValueError, ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(client, path=str(path))
    path.chmod(0o600)
    return server


def request(path: Path, verb: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
    """Ask the daemon; raises NotConfigured when no daemon answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotConfigured("not up (no daemon answers)") from None
        sock.sendall(json.dumps({"verb": verb, **args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data:
        raise VigilError(f"the daemon closed the control connection during {verb}")
    return json.loads(data)
