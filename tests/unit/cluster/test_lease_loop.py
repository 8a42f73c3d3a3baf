"""The lease loop's shell: whatever a store call raises, the rule hears "no answer" and the
loop goes on, retrying at a bounded rate; on shutdown the group is stopped and the lease
revoked. The real store is in tests/lab/cluster/test_etcd_lab.py."""

from __future__ import annotations

import asyncio
import logging

from vigil.cluster.etcd import Acquired
from vigil.cluster.lease import LeaseSettings
from vigil.cluster.lease_loop import LeaseLoop


class Flaky:
    """A store whose grant fails `failures` times (with any exception), then works."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[str] = []

    def grant(self, ttl: int) -> tuple[int, int]:
        self.calls.append("grant")
        if self.failures:
            self.failures -= 1
            raise (KeyError if self.failures % 2 else OSError)("broken")
        return 7, ttl

    def acquire(self, key: str, node: str, lease: int) -> Acquired:
        self.calls.append("acquire")
        return Acquired(True, node)

    def keepalive(self, lease: int) -> int:
        self.calls.append("keepalive")
        return 10

    def holder(self, key: str) -> str | None:
        return "n0"

    def revoke(self, lease: int) -> None:
        self.calls.append("revoke")


def test_failing_calls_are_retried_at_a_bounded_rate_then_the_group_runs_and_stops():
    store = Flaky(failures=4)
    actions: list[str] = []

    async def start() -> None:
        actions.append("start")

    async def stop() -> None:
        actions.append("stop")

    async def scenario() -> float:
        settings = LeaseSettings(ttl=10, margin=3, poll_every=0.05)
        loop = LeaseLoop(settings, "n0", store, "/vigil/g", start, stop)  # type: ignore[arg-type]
        runner = asyncio.ensure_future(loop.run())
        began = asyncio.get_running_loop().time()
        async with asyncio.timeout(10):
            while actions != ["start"]:
                await asyncio.sleep(0.01)
        took = asyncio.get_running_loop().time() - began
        loop.shutdown()
        await asyncio.wait_for(runner, 10)
        return took

    took = asyncio.run(scenario())
    assert store.calls[:6] == ["grant"] * 5 + ["acquire"]
    assert took >= 4 * 0.05  # four failures, each waited for before the next try
    assert actions == ["start", "stop"] and store.calls[-1] == "revoke"


def test_a_stop_that_outlasts_the_ttl_is_said_and_the_lease_is_kept_until_it_ends(caplog):
    """The group's stop takes 2.5 TTLs: the loop warns once a TTL has passed, refreshes the
    lease all along (the group still runs here), and revokes it only after the stop."""
    store = Flaky(failures=0)
    actions: list[str] = []

    async def start() -> None:
        actions.append("start")

    async def stop() -> None:
        actions.append("stopping")
        await asyncio.sleep(2.5 * 0.8)
        actions.append("stopped")

    async def scenario() -> None:
        settings = LeaseSettings(ttl=0.8, margin=0.3, poll_every=0.05)
        loop = LeaseLoop(settings, "n0", store, "/vigil/g", start, stop)  # type: ignore[arg-type]
        runner = asyncio.ensure_future(loop.run())
        async with asyncio.timeout(10):
            while actions != ["start"]:
                await asyncio.sleep(0.01)
            loop.rule.want(False)
            loop.poke()
            while actions[-1] != "stopped":
                await asyncio.sleep(0.01)
            while "revoke" not in store.calls:
                await asyncio.sleep(0.01)
        loop.shutdown()
        await asyncio.wait_for(runner, 10)

    with caplog.at_level(logging.INFO, logger="vigil.lease"):
        asyncio.run(scenario())
    during = store.calls[store.calls.index("acquire") + 1:store.calls.index("revoke")]
    assert during.count("keepalive") >= 5  # every TTL / 3 through the 2 s stop
    slow = [r.getMessage() for r in caplog.records if "lease.act_slow" in r.getMessage()]
    assert len(slow) == 1 and "act=stop" in slow[0]
