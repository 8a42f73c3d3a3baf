"""The nftables backend's shell around the plan: learning, holding, no-op syncs,
recovery from a refused transaction (a recording runner instead of the kernel;
tests/lab/dataplane runs it against the real one)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_support import ENV, RS1, RS2, listing_of, seed_table

from vigil.dataplane.commands import transaction
from vigil.dataplane.plan import build_plan
from vigil.dataplane.ruleset import LEARNING_COMMENT, render
from vigil.director.backends import nftables as backend_module
from vigil.director.backends.base import BackendError
from vigil.director.backends.nftables import NftablesBackend
from vigil.kernel.nftables import NftError
from vigil.lvs.reconcile import reconcile
from vigil.lvs.table import Table


class Runner:
    name = "recording"

    def __init__(self, listing: dict | None = None):
        self.listing = listing or {}
        self.transactions: list[list[dict]] = []
        self.refuse = False

    def apply(self, commands):
        if self.refuse:
            self.refuse = False
            raise NftError("nft rejected the transaction: Error: No such file or directory")
        self.transactions.append(list(commands))

    def list_table(self, family, name):
        return self.listing.get(family, [])

    def list_counters(self, family, name):
        return []

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def text(commands) -> str:
    return json.dumps(commands)


async def started(runner: Runner, clock: Clock) -> NftablesBackend:
    backend = NftablesBackend(runner, environment=lambda addresses: ENV, clock=clock,
                              forget=lambda addresses: None)
    await backend.start()
    return backend


async def sync(backend: NftablesBackend, table: Table) -> None:
    await backend.apply(reconcile(table, await backend.read()), table)


def test_a_fresh_data_path_learns_then_settles():
    async def scenario():
        runner, clock = Runner(), Clock()
        backend = await started(runner, clock)
        await sync(backend, seed_table(0, 0))  # a fresh director: nothing checked yet
        await sync(backend, seed_table(1, 1))
        assert len(runner.transactions) == 2
        assert LEARNING_COMMENT in text(runner.transactions[0])
        assert '"t_' not in text(runner.transactions[1])  # no transitions while learning
        await sync(backend, seed_table(1, 1))  # nothing changed: nothing sent
        assert len(runner.transactions) == 2
        assert backend._due() is None  # not settled, not quiet for long
        backend.settled()
        clock.now += backend_module.LEARN_QUIET
        assert backend._due() == "settled"
        backend._learning = False
        await backend._commit(await backend.read(), "settled")
        assert '"flush"' in text(runner.transactions[2])
        assert LEARNING_COMMENT not in text(runner.transactions[2])
        await backend.close()

    asyncio.run(scenario())


def test_an_adopted_data_path_is_held_until_the_checks_agree():
    plan = build_plan(seed_table(), ENV)
    runner, clock = Runner(listing_of(transaction(None, render(plan)))), Clock()

    async def scenario():
        backend = await started(runner, clock)
        assert await backend.read() == seed_table()
        await sync(backend, seed_table(0, 0))  # restarted: servers unchecked
        await sync(backend, seed_table(1, 1))  # checked: the same as before
        assert runner.transactions == []  # the running data path was never touched
        backend.settled()
        clock.now += backend_module.LEARN_QUIET
        assert backend._due() == "settled"
        backend._holding = False
        assert await backend._commit(await backend.read(), "settled") is False
        assert runner.transactions == []
        await backend.close()

    asyncio.run(scenario())


def test_a_refused_transaction_changes_nothing_and_the_next_rebuilds():
    async def scenario():
        runner, clock = Runner(), Clock()
        backend = await started(runner, clock)
        await sync(backend, seed_table())
        runner.refuse = True  # as if someone had flushed the ruleset
        with pytest.raises(BackendError):
            await sync(backend, seed_table(1, 0))
        assert await backend.read() == seed_table()  # still what the kernel had
        await sync(backend, seed_table(1, 0))
        rebuilt = runner.transactions[-1]
        assert rebuilt[:2] == [{"add": {"table": {"family": "netdev", "name": "vigil"}}},
                               {"delete": {"table": {"family": "netdev", "name": "vigil"}}}]
        assert await backend.read() == seed_table(1, 0)
        await backend.close()

    asyncio.run(scenario())


def test_a_server_losing_its_weight_is_resolved_afresh():
    forgotten: list[list[str]] = []

    async def scenario():
        backend = NftablesBackend(Runner(), environment=lambda addresses: ENV, clock=Clock(),
                                  forget=lambda addresses: forgotten.append(list(addresses)))
        await backend.start()
        await sync(backend, seed_table())
        await sync(backend, seed_table(1, 0))
        await sync(backend, seed_table(1, 1))
        await backend.close()

    asyncio.run(scenario())
    assert forgotten == [[RS2]]
    assert RS1 not in forgotten[0]


def test_a_standby_forwards_only_what_is_addressed_here_and_activation_drops_the_gate():
    """The same slots on both directors; the standby's dispatch rules carry
    `fib daddr type local` (the VIP's packets pass only once the VIP is here), and
    activation rewrites the base chains alone, in one transaction."""
    from vigil.dataplane.ruleset import STANDBY_COMMENT

    async def scenario():
        runner, clock = Runner(), Clock()
        backend = await started(runner, clock)
        await backend.set_active(False)
        assert runner.transactions == []  # nothing in the kernel yet
        await sync(backend, seed_table())
        first = text(runner.transactions[0])
        assert STANDBY_COMMENT in first and '"fib"' in first
        await backend.set_active(False)
        assert len(runner.transactions) == 1  # already a standby: nothing sent
        await backend.set_active(True)
        activation = runner.transactions[1]
        assert STANDBY_COMMENT not in text(activation) and '"fib"' not in text(activation)
        touched = {c[verb][kind]["name"] if "name" in c[verb][kind] else c[verb][kind]["chain"]
                   for c in activation for verb in c for kind in c[verb]}
        assert touched == {"in_eth0", "in_eth1"}  # base chains only: slots, flows untouched
        await backend.set_active(False)
        assert STANDBY_COMMENT in text(runner.transactions[2])
        await backend.close()

    asyncio.run(scenario())


def test_an_active_director_renders_no_gate():
    plan = build_plan(seed_table(), ENV)
    assert '"fib"' not in text(transaction(None, render(plan)))


def test_a_refused_activation_leaves_the_standby_gated_and_can_be_tried_again():
    from vigil.dataplane.ruleset import STANDBY_COMMENT

    async def scenario():
        runner, clock = Runner(), Clock()
        backend = await started(runner, clock)
        await backend.set_active(False)
        await sync(backend, seed_table())
        runner.refuse = True
        with pytest.raises(BackendError):
            await backend.set_active(True)
        await backend.set_active(True)  # tried again: sent, not skipped
        assert STANDBY_COMMENT not in text(runner.transactions[-1])
        assert len(runner.transactions) == 2
        await backend.close()

    asyncio.run(scenario())


def test_an_adopted_standby_is_activated_without_waiting_for_its_checks():
    from vigil.dataplane.ruleset import STANDBY_COMMENT

    plan = build_plan(seed_table(), ENV, standby=True)
    runner, clock = Runner(listing_of(transaction(None, render(plan)))), Clock()

    async def scenario():
        backend = await started(runner, clock)  # holding: its checks have not agreed yet
        await backend.set_active(True)
        assert len(runner.transactions) == 1
        assert STANDBY_COMMENT not in text(runner.transactions[0])
        await backend.close()

    asyncio.run(scenario())
