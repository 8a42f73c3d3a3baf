"""Ask a running daemon over its control socket (used by the CLI).

Every vigil daemon (heartbeat, director, volume) speaks the same transport:
one JSON object per line each way, on a root-only unix socket.
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

from vigil.errors import EnvironmentProblem, VigilError


class NoDaemon(EnvironmentProblem):
    """Nothing answers on the socket: it is absent, or stale (its daemon died)."""


def exchange(path: str | Path, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Send one request and return the daemon's answer, whatever it says."""
    path = Path(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise NoDaemon(f"no daemon: {path} does not exist") from None
        except ConnectionRefusedError:
            raise NoDaemon(f"no daemon: {path} is stale") from None
        except PermissionError:
            raise EnvironmentProblem(f"{path}: permission denied (root only)") from None
        except OSError as exc:
            raise VigilError(f"{path}: {exc.strerror or exc}") from None
        # refused before it read the request? its answer says why
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise VigilError(f"{path}: no answer within {timeout:g}s") from None
        except ConnectionResetError:
            pass
    if not data:
        raise VigilError(f"{path}: the daemon closed the connection without an answer")
    try:
        answer = json.loads(data)
    except ValueError:
        raise VigilError(f"{path}: the daemon sent an unreadable answer") from None
    if not isinstance(answer, dict):
        raise VigilError(f"{path}: the daemon sent an unreadable answer")
    return answer


def request(path: str | Path, command: str, timeout: float = 10.0,
            **arguments: Any) -> dict[str, Any]:
    """Ask the heartbeat daemon; a refusal or a missing daemon is a clear VigilError."""
    try:
        answer = exchange(path, {"command": command, **arguments}, timeout)
    except NoDaemon as exc:
        where = f"{path} is stale" if "stale" in str(exc) else f"no {path}"
        raise EnvironmentProblem(f"vigil heartbeat is not running ({where})") from None
    if not answer.get("ok", False):
        raise VigilError(answer.get("error", "the daemon refused the request"))
    return answer
