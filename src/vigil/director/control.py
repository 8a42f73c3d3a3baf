"""Talking to running directors over their unix control sockets (for the CLI)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from vigil.director import daemon
from vigil.errors import VigilError


def running_instances() -> list[str]:
    """Instances with a control socket that answers."""
    names = []
    for path in sorted(daemon.RUN_DIR.glob("director.*.sock")):
        name = path.name[len("director."):-len(".sock")]
        try:
            request(name, {"command": "ping"}, timeout=2.0)
        except VigilError as exc:
            if "unknown command" not in str(exc):
                continue
        names.append(name)
    return names


def request(instance: str, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    path: Path = daemon.Paths(instance).socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise VigilError(f"director {instance} does not answer on {path}: "
                             f"{exc.strerror or exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise VigilError(f"director {instance} sent a garbled answer") from None
    if not answer.get("ok"):
        raise VigilError(answer.get("error", "request failed"))
    return answer
