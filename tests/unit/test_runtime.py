"""The daemons' pid file: it counts only while the daemon itself runs; a pid file
that cannot be read or written says so rather than passing for "stopped"."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil import runtime
from vigil.errors import EnvironmentProblem
from vigil.runtime import PidFile

WORD = "vigil-runtime-test"


def _sleeper(*extra: str) -> subprocess.Popen[bytes]:
    """A process that runs until killed, once it has exec'd (a fork shows its parent's
    command line until then)."""
    code = "import time; time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", code, *extra])
    deadline = time.monotonic() + 10
    while code not in (runtime.command_line(process.pid) or ()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process


@pytest.fixture
def daemon() -> Iterator[subprocess.Popen[bytes]]:
    process = _sleeper(WORD)
    yield process
    process.kill()
    process.wait()


def _file(tmp_path: Path, pid: int) -> PidFile:
    path = tmp_path / "run" / "test.pid"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"{pid}\n")
    return PidFile(path, (WORD,), "test daemon")


def test_a_live_daemon_is_running_and_blocks_a_second_start(tmp_path, daemon):
    pids = _file(tmp_path, daemon.pid)
    assert pids.running_pid() == daemon.pid and not pids.stale()
    with pytest.raises(EnvironmentProblem, match=f"test daemon already runs \\(pid {daemon.pid}"):
        pids.acquire()
    assert pids.path.read_text() == f"{daemon.pid}\n"


def test_a_stale_pid_file_is_taken_over(tmp_path):
    gone = _sleeper(WORD)
    gone.kill()
    gone.wait()
    pids = _file(tmp_path, gone.pid)
    assert pids.running_pid() is None and pids.stale()
    pids.acquire()
    assert pids.path.read_text() == f"{os.getpid()}\n"
    pids.release()
    assert not pids.path.exists() and not pids.stale()


def test_an_exited_daemon_not_yet_reaped_does_not_run(tmp_path):
    zombie = _sleeper(WORD)
    zombie.kill()
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)
    try:
        assert _file(tmp_path, zombie.pid).running_pid() is None
    finally:
        zombie.wait()


def test_a_foreign_process_with_the_number_is_not_the_daemon(tmp_path):
    foreign = _sleeper()  # runs, but its command line does not name the daemon
    try:
        pids = _file(tmp_path, foreign.pid)
        assert pids.running_pid() is None and pids.stale()
        pids.acquire()
        assert pids.path.read_text() == f"{os.getpid()}\n"
    finally:
        foreign.kill()
        foreign.wait()


def test_garbage_or_an_empty_file_is_no_daemon(tmp_path):
    for text in ("", "not a number\n"):
        path = tmp_path / "test.pid"
        path.write_text(text)
        assert PidFile(path, (WORD,)).running_pid() is None
    assert PidFile(tmp_path / "missing.pid").running_pid() is None


def test_our_own_pid_does_not_block_our_start(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "process_runs", lambda pid, words: True)
    pids = _file(tmp_path, os.getpid())
    pids.acquire()
    assert pids.running_pid() == os.getpid()


def test_release_leaves_a_successors_file(tmp_path, daemon):
    pids = _file(tmp_path, daemon.pid)
    pids.release()
    assert pids.path.read_text() == f"{daemon.pid}\n"


def test_an_unreadable_pid_file_is_a_clear_error(tmp_path, monkeypatch):
    pids = _file(tmp_path, 1)

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(EnvironmentProblem, match=r"cannot read the pid file .*permission denied"):
        pids.running_pid()
    with pytest.raises(EnvironmentProblem, match="cannot read the pid file"):
        pids.acquire()
    pids.release()  # on the way out nothing more can be said: no error


def test_an_unwritable_pid_file_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    pids = PidFile(tmp_path / "run" / "test.pid", (WORD,))
    with pytest.raises(EnvironmentProblem, match=r"cannot write the pid file .*permission denied"):
        pids.acquire()


def test_wait_gone_sees_the_daemon_exit(tmp_path, daemon):
    pids = _file(tmp_path, daemon.pid)
    assert not pids.wait_gone(daemon.pid, 0.1)
    daemon.terminate()
    assert pids.wait_gone(daemon.pid, 10)


def test_wait_gone_reaped_waits_for_the_process_table(tmp_path, daemon):
    pids = _file(tmp_path, daemon.pid)
    daemon.kill()
    os.waitid(os.P_PID, daemon.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert pids.wait_gone(daemon.pid, 0.1)
    assert not pids.wait_gone(daemon.pid, 0.1, reaped=True)
    daemon.wait()
    assert pids.wait_gone(daemon.pid, 0.1, reaped=True)


def test_every_word_must_be_in_the_command_line(daemon):
    assert runtime.process_runs(daemon.pid, (WORD, "python"))
    assert not runtime.process_runs(daemon.pid, (WORD, "director"))


def test_signals_reach_the_handler_with_their_number():
    async def main() -> list[int]:
        seen: list[int] = []
        loop = asyncio.get_running_loop()
        runtime.on_signals(loop, (signal.SIGUSR1,), seen.append)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        return seen

    assert asyncio.run(main()) == [signal.SIGUSR1]


def test_a_spawned_daemon_runs_in_its_own_session_and_writes_its_output(tmp_path):
    output = tmp_path / "out"
    output.write_text("before\n")
    child = runtime.spawn_detached(
        [sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid())"], output,
        append=True)
    assert child.wait(10) == 0
    assert output.read_text() == "before\nTrue\n"


def test_detach_returns_the_daemons_pid_or_its_error(tmp_path):
    marker = tmp_path / "marker"

    def serve(ready):  # runs in the grandchild
        marker.write_text(str(os.getpid()))
        ready()
        return 0

    pid = runtime.detach(serve)
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.01)
    assert marker.read_text() == str(pid) and pid != os.getpid()

    def fail(ready):
        raise EnvironmentProblem("no can do")

    with pytest.raises(Exception, match="no can do"):
        runtime.detach(fail)
