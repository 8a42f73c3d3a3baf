"""respawn: programs started with the daemon, restarted when they die, ended at its stop."""

from __future__ import annotations

import asyncio
import getpass
import os
import signal

from vigil.ha.respawn import NO_RESPAWN, Program, RespawnPolicy, Supervisor


def test_the_policy_restarts_after_a_delay_stops_on_100_and_when_too_fast():
    policy = RespawnPolicy(delay=1.0, max_restarts=3, window=60.0)
    assert policy.exited(1, 0.0)[0] == 1.0
    assert policy.exited(None, 1.0)[0] == 1.0  # killed by a signal
    assert policy.exited(0, 2.0)[0] == 1.0
    wait, why = policy.exited(1, 3.0)  # the fourth exit within the window
    assert wait is None and "too fast" in why
    later = RespawnPolicy(delay=1.0, max_restarts=3, window=60.0)
    for now in (0.0, 100.0, 200.0, 300.0, 400.0):  # spread out: always restarted
        assert later.exited(1, now)[0] == 1.0
    assert RespawnPolicy().exited(NO_RESPAWN, 0.0)[0] is None


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


async def until(condition, seconds=10.0):
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_killed_program_comes_back_and_all_end_with_the_supervisor(tmp_path):
    pids = tmp_path / "pids"
    script = tmp_path / "client"
    script.write_text(f"#!/bin/sh\necho $$ >> {pids}\necho $GREETING >> {tmp_path}/env\n"
                      "exec sleep 60\n")
    script.chmod(0o755)
    quitter = tmp_path / "quitter"
    quitter.write_text(f"#!/bin/sh\necho run >> {tmp_path}/quits\nexit {NO_RESPAWN}\n")
    quitter.chmod(0o755)

    def started():
        return pids.read_text().split() if pids.exists() else []

    async def scenario():
        supervisor = Supervisor([Program(getpass.getuser(), f"{script}"),
                                 Program(getpass.getuser(), f"{quitter}")],
                                env={"GREETING": "hello"},
                                policy=RespawnPolicy(delay=0.05))
        supervisor.start()
        await until(lambda: len(started()) == 1)
        first = int(started()[0])
        os.kill(first, signal.SIGKILL)
        await until(lambda: len(started()) == 2)
        second = int(started()[1])
        assert second != first
        await until(lambda: (tmp_path / "quits").exists())
        await asyncio.sleep(0.3)  # a negative: exit 100 is never started again
        assert (tmp_path / "quits").read_text().split() == ["run"]
        await supervisor.stop()
        await until(lambda: gone(second))
        assert (tmp_path / "env").read_text().split() == ["hello", "hello"]

    asyncio.run(scenario())
