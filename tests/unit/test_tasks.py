"""cancel_and_wait ends the tasks it is given, and never eats its caller's cancellation."""

from __future__ import annotations

import asyncio

from vigil.tasks import cancel_and_wait


def test_the_tasks_end_and_the_caller_goes_on():
    async def main() -> list[bool]:
        tasks = [asyncio.create_task(asyncio.sleep(60)) for _ in range(3)]
        await asyncio.sleep(0)
        await cancel_and_wait([*tasks, None])
        return [t.cancelled() for t in tasks]

    assert asyncio.run(main()) == [True, True, True]


def test_a_cancellation_of_the_caller_while_it_waits_is_not_swallowed():
    async def main() -> str:
        started = asyncio.Event()

        async def stubborn() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                await asyncio.sleep(0.05)  # takes a moment to clean up

        async def closer(task: asyncio.Task[None]) -> str:
            await cancel_and_wait([task])
            return "went on after being cancelled"

        task = asyncio.create_task(stubborn())
        await started.wait()
        waiter = asyncio.create_task(closer(task))
        await asyncio.sleep(0.01)
        waiter.cancel()
        try:
            return await waiter
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(main()) == "cancelled"
