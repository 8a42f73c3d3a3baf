"""The daemon's control socket: one JSON request line, one JSON answer line.

The socket lives in the host's /run (`/run/vigil/volume/NAME/control.sock`),
so each lab host (and each real machine) talks to its own daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vigil.control.client import NoDaemon, exchange
from vigil.control.server import ControlServer
from vigil.errors import VigilError
from vigil.replication.states import NotConfigured

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def socket_path(run_dir: Path) -> Path:
    return run_dir / "control.sock"


async def serve(path: Path, handler: Handler) -> ControlServer:
    """Start the volume's socket; a refusal (VigilError) carries its exit code to the CLI."""

    async def answer(request: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await handler(request)
        except VigilError as exc:
            return {"ok": False, "code": exc.exit_code, "message": str(exc)}
        reply.setdefault("ok", True)
        reply.setdefault("code", 0)
        return reply

    server = ControlServer(path, answer)
    await server.start()
    return server


def request(path: Path, verb: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
    """Ask the daemon; raises NotConfigured when no daemon answers."""
    try:
        return exchange(path, {"verb": verb, **args}, timeout)
    except NoDaemon:
        raise NotConfigured("not up (no daemon answers)") from None
