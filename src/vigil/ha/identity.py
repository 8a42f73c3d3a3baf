"""This node's identity on the wire: its uuid and its generation (incarnation) number.

Kept where heartbeat keeps them (`/var/lib/heartbeat/hb_uuid`, 16 raw bytes,
and `hb_generation`, a right-aligned decimal), so vigil can replace heartbeat
on a machine and its peers see a restart, not a stranger or a replay.
Beside them, `vigil_peer_marks` keeps the newest (generation, seq) seen from each
peer, so packets captured before this daemon started stay replays after it.
"""

from __future__ import annotations

import json
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


def next_generation(state_dir: Path = DEFAULT_STATE_DIR, method: str = "file") -> int:
    """Read, increment and durably store the generation (first start: the current time).

    ha.cf's `hbgenmethod time` takes the current time at every start instead (no file
    needed; a clock set back makes the peers take the new packets for replays)."""
    if method == "time":
        return int(time.time())
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


PEER_MARKS_FILE = "vigil_peer_marks"
#: more than this is not a mark file of a two-node (or small) cluster
MAX_PEER_MARKS_BYTES = 64 * 1024
MAX_MARK = 2**63


def load_peer_marks(state_dir: Path = DEFAULT_STATE_DIR) -> tuple[dict[str, tuple[int, int]],
                                                                   str | None]:
    """What the previous run saw last from each peer: {node: (generation, seq)}.

    A missing file is a first start. A damaged one is ignored with the reason returned
    (the daemon warns: until each peer's next packet, replays are not recognised)."""
    path = state_dir / PEER_MARKS_FILE
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_PEER_MARKS_BYTES + 1)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"{path}: {exc.strerror}"
    if len(data) > MAX_PEER_MARKS_BYTES:
        return {}, f"{path}: larger than {MAX_PEER_MARKS_BYTES} bytes"
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return {}, f"{path}: not JSON ({exc})"
    if not isinstance(document, dict):
        return {}, f"{path}: not an object of node: [generation, seq]"
    marks: dict[str, tuple[int, int]] = {}
    for node, value in document.items():
        if (not isinstance(node, str) or not isinstance(value, list) or len(value) != 2
                or not all(type(number) is int and 0 < number < MAX_MARK for number in value)):
            return {}, f"{path}: bad entry for {str(node)[:64]!r}"
        marks[node.lower()] = (value[0], value[1])
    return marks, None


def save_peer_marks(marks: dict[str, tuple[int, int]],
                    state_dir: Path = DEFAULT_STATE_DIR) -> None:
    document = {node: [generation, seq] for node, (generation, seq) in sorted(marks.items())}
    _write_synced(state_dir / PEER_MARKS_FILE, json.dumps(document).encode(), 0o600)
