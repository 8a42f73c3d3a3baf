"""This node's identity on the wire: its uuid and its generation (incarnation) number.

Kept where heartbeat keeps them (`/var/lib/heartbeat/hb_uuid`, 16 raw bytes,
and `hb_generation`, a right-aligned decimal), so vigil can replace heartbeat
on a machine and its peers see a restart, not a stranger or a replay.
"""

from __future__ import annotations

import os
import time
import uuid as uuidlib
from pathlib import Path

from vigil.errors import EnvironmentProblem

DEFAULT_STATE_DIR = Path("/var/lib/heartbeat")
GENERATION_WIDTH = 15  # heartbeat writes "%15lu\n"


def node_uuid(state_dir: Path = DEFAULT_STATE_DIR) -> bytes:
    path = state_dir / "hb_uuid"
    try:
        data = path.read_bytes()
        if len(data) == 16:
            return data
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise EnvironmentProblem(f"{path}: {exc.strerror}") from None
    data = uuidlib.uuid4().bytes
    _write_synced(path, data, 0o644)
    return data


def next_generation(state_dir: Path = DEFAULT_STATE_DIR) -> int:
    """Read, increment and durably store the generation (first start: the current time)."""
    path = state_dir / "hb_generation"
    try:
        generation = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        generation = int(time.time())
    except OSError as exc:
        raise EnvironmentProblem(f"{path}: {exc.strerror}") from None
    generation += 1
    _write_synced(path, f"{generation:>{GENERATION_WIDTH}}\n".encode(), 0o644)
    return generation


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    """Write durably: a lost generation would make our packets look like replays."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise EnvironmentProblem(f"{path}: {exc.strerror}") from None
