"""Active director or warm standby: each action's step, `status`'s answer, what a
standby holds back, and the daemon flipping roles without touching its table."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from vigil.director import daemon
from vigil.director.backends.memory import MemoryBackend
from vigil.director.health import RunFallbackCommand, SendAlert, SoftFailure
from vigil.director.role import Current, Role, SideEffectGate, Step, lsb_status, step_for
from vigil.lvs.table import ServiceKey

STOPPED, STANDBY, ACTIVE = Current(), Current(Role.STANDBY, True), Current(Role.ACTIVE)
WARM_ACTIVE = Current(Role.ACTIVE, resident=True)


@pytest.mark.parametrize(("action", "current", "step"), [
    ("start", STOPPED, Step.SPAWN_ACTIVE),  # no standby: ldirectord's cold start
    ("start", STANDBY, Step.ACTIVATE),
    ("start", ACTIVE, Step.NOTHING),
    ("stop", WARM_ACTIVE, Step.DEACTIVATE),  # started as a standby: it stays warm
    ("stop", ACTIVE, Step.TERMINATE),  # started cold: it ends, as ldirectord did
    ("stop", STANDBY, Step.NOTHING),
    ("stop", STOPPED, Step.NOTHING),
    ("standby", STOPPED, Step.SPAWN_STANDBY),
    ("standby", ACTIVE, Step.DEACTIVATE),
    ("standby", STANDBY, Step.NOTHING),
    ("shutdown", STANDBY, Step.TERMINATE),
    ("shutdown", WARM_ACTIVE, Step.TERMINATE),
    ("shutdown", STOPPED, Step.NOTHING),
])
def test_each_action_takes_one_step(action, current, step):
    assert step_for(action, current) is step


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError, match="unknown action"):
        step_for("status", STOPPED)


def test_status_says_running_only_for_the_active_director():
    assert [lsb_status(c) for c in (STOPPED, STANDBY, ACTIVE, WARM_ACTIVE)] == [3, 3, 0, 0]


KEY = ServiceKey.tcp("198.51.100.100", 80)
ALERT = SendAlert(("root@localhost",), "down", "rs1 is down", None)


def test_a_standby_sends_no_alert_and_runs_its_fallback_command_when_it_takes_over():
    gate = SideEffectGate(active=False)
    assert not gate.admit(ALERT)
    assert gate.admit(SoftFailure(KEY, None, 1, 2, "refused"))  # type: ignore[arg-type]
    assert not gate.admit(RunFallbackCommand("/sorry", "start", KEY))
    assert gate.set_active(True) == [RunFallbackCommand("/sorry", "start", KEY)]
    assert gate.admit(ALERT)
    assert gate.set_active(False) == []
    # back on standby: the servers return, then fail again before it is active
    assert not gate.admit(RunFallbackCommand("/sorry", "stop", KEY))
    assert not gate.admit(RunFallbackCommand("/sorry", "start", KEY))
    assert gate.set_active(True) == []  # the fallback already runs: nothing to repeat


def test_a_standby_never_runs_a_stop_for_a_fallback_it_never_started():
    gate = SideEffectGate(active=False)
    assert not gate.admit(RunFallbackCommand("/sorry", "start", KEY))
    assert not gate.admit(RunFallbackCommand("/sorry", "stop", KEY))
    assert gate.set_active(True) == []


CONFIG = """\
checktimeout=1
checkinterval=1
virtual=127.0.0.1:8080
\treal=127.0.0.2:{port} masq
\tscheduler=rr
\tchecktype=connect
"""


def test_a_standby_keeps_its_table_warm_and_flips_role_without_touching_it(run_dir):
    async def scenario():
        server = socket.socket()
        server.bind(("127.0.0.2", 0))
        server.listen(8)
        cf = run_dir / "ldirectord.cf"
        cf.write_text(CONFIG.format(port=server.getsockname()[1]))
        backend = MemoryBackend()
        director = daemon.Director(cf, backend, standby=True)
        task = asyncio.create_task(director.run())
        key = ServiceKey.tcp("127.0.0.1", 8080)
        async with asyncio.timeout(10):
            while [r.weight for r in getattr(backend.table.service(key), "reals", ())] != [1]:
                await asyncio.sleep(0.02)
        state = json.loads(director.paths.state.read_text())
        assert state["role"] == "standby" and state["resident"] is True
        assert backend.roles == [False]  # a standby from the first transaction on
        transactions = len(backend.transactions)
        answer = await director._answer({"command": "activate"})
        assert answer == {"ok": True, "role": "active"}
        assert backend.roles == [False, True]
        assert json.loads(director.paths.state.read_text())["role"] == "active"
        await director._answer({"command": "deactivate"})
        assert backend.roles == [False, True, False]
        assert len(backend.transactions) == transactions  # the table never moved
        status = await director._answer({"command": "status"})
        assert (status["role"], status["resident"]) == ("standby", True)
        director._stop.set()
        await task
        assert not director.paths.state.exists()
        server.close()

    asyncio.run(scenario())
