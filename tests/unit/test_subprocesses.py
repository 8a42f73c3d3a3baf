"""External programs: exit codes, output, and timeouts that end the whole group."""

import asyncio
import time

from vigil.subprocesses import run_program


def test_exit_code_and_output_are_reported():
    result = asyncio.run(run_program(["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=5))
    assert result.returncode == 7 and not result.timed_out
    assert "out" in result.output and "err" in result.output


def test_missing_program_is_a_result_not_an_exception():
    result = asyncio.run(run_program(["/nonexistent/agent"], timeout=5))
    assert result.returncode == 127 and not result.ok


def test_timeout_kills_the_program_and_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pidfile}; trap '' TERM; wait"
    started = time.monotonic()
    result = asyncio.run(run_program(["sh", "-c", script], timeout=0.5))
    assert result.timed_out and result.returncode is None
    assert time.monotonic() - started < 6
    child = int(pidfile.read_text())
    # The background child shared the program's group, so it is gone too.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _gone(child):
        time.sleep(0.01)
    assert _gone(child)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True
