"""The ldirectord resource over a warm standby director: start activates it and stop
makes it a standby again, in-process (no program runs); status says stopped on a
standby, so the group logic sees the resource only where the VIP is."""

from __future__ import annotations

import asyncio
import json

from vigil import runtime
from vigil.agents.base import OcfStatus
from vigil.agents.ldirectord import Ldirectord
from vigil.agents.options import AgentOptions
from vigil.director import daemon
from vigil.director.backends.memory import MemoryBackend

CONFIG = "checktimeout=1\ncheckinterval=1\nvirtual=127.0.0.1:8080\n\treal=127.0.0.2:9 masq\n" \
         "\tchecktype=off\n"


def test_the_resource_flips_a_warm_standby_without_running_a_program(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(daemon, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(runtime, "process_runs", lambda pid, words: True)
    (tmp_path / "run").mkdir()
    cf = tmp_path / "ldirectord.cf"
    cf.write_text(CONFIG)
    # any program run would fail: the flips must not need one
    agent = Ldirectord("ldirectord", (str(cf),), AgentOptions(vigil_command=("/nonexistent",)))

    async def scenario():
        backend = MemoryBackend()
        director = daemon.Director(cf, backend, standby=True)
        daemon.pid_file(director.paths.instance).write()
        task = asyncio.create_task(director.run())
        async with asyncio.timeout(10):
            while not director.paths.socket.exists():
                await asyncio.sleep(0.01)
        status = await agent.status(5)
        assert status.status is OcfStatus.NOT_RUNNING and "warm standby" in status.message
        started = await agent.start(5)
        assert started.ok and "active" in started.message
        assert (await agent.status(5)).ok
        assert backend.roles == [False, True]
        stopped = await agent.stop(5)
        assert stopped.ok and "standby" in stopped.message
        assert (await agent.status(5)).status is OcfStatus.NOT_RUNNING
        assert json.loads(director.paths.state.read_text())["role"] == "standby"
        director._stop.set()
        await task

    asyncio.run(scenario())
