"""Talking to running directors over their unix control sockets (for the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil.control.client import exchange
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
    try:
        answer = exchange(path, message, timeout)
    except VigilError as exc:
        raise VigilError(f"director {instance} does not answer: {exc}") from None
    if not answer.get("ok"):
        raise VigilError(answer.get("error", "request failed"))
    return answer
