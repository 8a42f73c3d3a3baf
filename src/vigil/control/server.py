"""Serve the control socket from the daemon's event loop (never blocking the heartbeat)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vigil.errors import EnvironmentProblem, VigilError
from vigil.log import event

log = logging.getLogger("vigil.control")
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
#: a request line longer than this is refused
MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 5.0


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class ControlServer:
    """One daemon's socket: root only, one JSON request line, one JSON answer line."""

    def __init__(self, path: str | Path, handler: Handler,
                 allowed_uids: frozenset[int] | None = None):
        self.path = Path(path)
        self.handler = handler
        #: root, and the daemon's own user (a director with the userspace backend needs no root)
        self.allowed_uids = allowed_uids if allowed_uids is not None else \
            frozenset({0, os.geteuid()})
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if await self._in_use():
                raise EnvironmentProblem(f"{self.path}: another daemon answers on it")
            self.path.unlink()
        # bound with no await between the umask and its restoring: the umask is the whole
        # process's, and another task must never start anything under ours
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                listener.bind(str(self.path))
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            self._server = await asyncio.start_unix_server(self._serve, sock=listener,
                                                           limit=MAX_REQUEST)
        except BaseException:
            listener.close()
            raise

    async def _in_use(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(self.path)), 1)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            if uid not in self.allowed_uids:
                event(log, "control.refused", logging.WARNING, uid=uid)
                await self._reply(writer, {"ok": False, "error": "permission denied: root only"})
                return
            try:
                line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            except (ValueError, asyncio.LimitOverrunError):
                await self._reply(writer, {"ok": False, "error": "bad request: longer than "
                                           f"{MAX_REQUEST // 1024} KiB"})
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
                await self._reply(writer, {"ok": False,
                                           "error": f"bad request: {str(exc)[:200]}"})
                return
            try:
                response = await self.handler(request)
            except VigilError as exc:  # a refused request: the caller is told why
                response = {"ok": False, "error": str(exc), "code": exc.exit_code}
            except Exception as exc:  # a handler bug must not kill the daemon
                event(log, "control.error", logging.ERROR, error=repr(exc))
                response = {"ok": False, "error": f"internal error: {exc}"}
            await self._reply(writer, response)
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except Exception as exc:  # whatever one request does, the next one is served
            event(log, "control.error", logging.ERROR, error=repr(exc)[:200])
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        writer.write(json.dumps(response).encode() + b"\n")
        await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
