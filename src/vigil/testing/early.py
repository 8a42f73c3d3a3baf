"""Jobs started when the tests are collected and read later by the tests that need them.

A QEMU guest under emulation keeps one core busy for minutes while it mostly waits on
itself; the unit tests keep the other core busy and care nothing for timing. So the
suite starts its guest runs at collection, one after the other in a background thread,
runs the unit tests meanwhile, and holds each lab test (whose timers a busy core could
disturb) until every early job is done.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class EarlyJobs(Generic[T]):
    """Named jobs run one at a time in a background thread, each at most once."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._futures: dict[str, Future[T]] = {}

    def start(self, name: str, job: Callable[[], T]) -> None:
        """Queue `job` under `name` (a name already queued is left as it is)."""
        if name in self._futures:
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="early")
        self._futures[name] = self._executor.submit(job)

    def result(self, name: str, job: Callable[[], T]) -> T:
        """The queued job's result (its exception raised here), or `job` run now."""
        future = self._futures.get(name)
        return job() if future is None else future.result()

    def pending(self) -> bool:
        return any(not future.done() for future in self._futures.values())

    def wait(self) -> None:
        """Until every queued job has ended (their failures are for their tests to say)."""
        for future in list(self._futures.values()):
            future.exception()


#: The suite's early guest runs (keyed by the test module that reads them).
GUEST_RUNS: EarlyJobs = EarlyJobs()
