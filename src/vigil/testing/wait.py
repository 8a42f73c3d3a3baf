"""Wait for a condition with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline (a test failure, with its reason)."""


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str] = "",
    interval: float = 0.01,
) -> T:
    """Poll `condition` until it returns something truthy; return that value.

    Raises `WaitTimeout` after `timeout` seconds, naming what was awaited and the
    last exception the condition raised, if any.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
            last_error = None
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            what = text or getattr(condition, "__name__", "condition")
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)
