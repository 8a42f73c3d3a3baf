"""Run external programs (agent scripts, check commands) safely from asyncio.

Each program runs in its own process group, so a timeout ends the program and
everything it started: SIGTERM first, SIGKILL after a grace period. Its output
is captured for the log, never left to block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: How long a program has after SIGTERM before SIGKILL.
KILL_GRACE = 2.0
#: Output beyond this many bytes is dropped (a runaway script must not eat memory).
OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ProgramResult:
    returncode: int | None  # None when it had to be killed
    output: str  # stdout and stderr, interleaved
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


async def run_program(
    argv: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input: bytes | None = None,
) -> ProgramResult:
    """Run `argv` with a deadline; never raises for the program's own failure."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        return ProgramResult(returncode=127, output=f"{argv[0]}: {exc.strerror}", timed_out=False)
    reader = asyncio.ensure_future(_read_limited(process, input))
    try:
        output = await asyncio.wait_for(asyncio.shield(reader), timeout)
        await process.wait()
        return ProgramResult(process.returncode, output, timed_out=False)
    except TimeoutError:
        await _terminate_group(process)
        output = await _drain(reader)
        return ProgramResult(None, output, timed_out=True)
    except asyncio.CancelledError:
        await _terminate_group(process)
        reader.cancel()
        raise


async def _read_limited(process: asyncio.subprocess.Process, input: bytes | None) -> str:
    if input is not None and process.stdin is not None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(input)
            await process.stdin.drain()
        process.stdin.close()
    assert process.stdout is not None
    chunks: list[bytes] = []
    size = 0
    while chunk := await process.stdout.read(65536):
        if size < OUTPUT_LIMIT:
            chunks.append(chunk[: OUTPUT_LIMIT - size])
        size += len(chunk)
    return b"".join(chunks).decode(errors="replace")


async def _drain(reader: asyncio.Future[str]) -> str:
    try:
        return await asyncio.wait_for(reader, 1.0)
    except (TimeoutError, asyncio.CancelledError):
        reader.cancel()
        return ""


async def _terminate_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the program's group, then SIGKILL it if it lingers."""
    for signum, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            continue
