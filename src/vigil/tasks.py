"""Ending tasks this code started, without swallowing a cancellation meant for the caller.

`task.cancel()` followed by `await task` inside `suppress(CancelledError)` also
hides a cancellation of the task doing the waiting: a daemon shutting down
would then carry on. `cancel_and_wait` tells the two apart with
`Task.cancelling()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel each task and wait until it has ended; re-raise if the caller was cancelled.

    A task that had failed before it could be cancelled raises its exception here.
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


async def cancel_all(tasks: Iterable[asyncio.Future[Any]],
                     timeout: float) -> set[asyncio.Future[Any]]:
    """Cancel the tasks and give them `timeout` seconds to end (at a daemon's exit, or
    before a stop); returns those still running then. Their failures are theirs: nothing
    is raised here."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if not pending:
        return set()
    _, lingering = await asyncio.wait(pending, timeout=timeout)
    return lingering
