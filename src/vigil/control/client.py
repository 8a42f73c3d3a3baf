"""Ask the running daemon over its control socket (used by the CLI)."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

from vigil.errors import EnvironmentProblem, VigilError


def request(path: str | Path, command: str, timeout: float = 10.0,
            **arguments: Any) -> dict[str, Any]:
    """Send one request, return the daemon's answer (raises a clear VigilError otherwise)."""
    path = Path(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise EnvironmentProblem(f"vigil heartbeat is not running (no {path})") from None
        except PermissionError:
            raise EnvironmentProblem(f"{path}: permission denied (root only)") from None
        except ConnectionRefusedError:
            raise EnvironmentProblem(f"vigil heartbeat is not running ({path} is stale)") \
                from None
        # refused before it read the request? its answer says why
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(json.dumps({"command": command, **arguments}).encode() + b"\n")
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise VigilError(f"vigil heartbeat did not answer within {timeout:g}s") from None
        except ConnectionResetError:
            pass
    try:
        answer = json.loads(data)
    except ValueError:
        raise VigilError("vigil heartbeat sent an unreadable answer") from None
    if not answer.get("ok", False):
        raise VigilError(answer.get("error", "the daemon refused the request"))
    return answer
