"""Fencing through a fence agent: action=off, then status must confirm it (exit 2)."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from vigil.ha.fencing import fence_off, request


def test_the_request_is_key_value_lines_without_smuggled_ones():
    assert request("off", {"ip": "203.0.113.6", "plug": "a\nb"}) == "action=off\nip=203.0.113.6\n"


def agent(tmp_path, status_exit: int):
    """A fence agent that records what it was asked and answers status with `status_exit`."""
    script = tmp_path / "fence_test"
    script.write_text(f"#!/bin/sh\ncat >> {tmp_path}/asked\necho --- >> {tmp_path}/asked\n"
                      f"grep -q action=status {tmp_path}/asked && "
                      f"[ \"$(tail -n 3 {tmp_path}/asked | grep -c action=status)\" = 1 ] && "
                      f"exit {status_exit}\nexit 0\n")
    script.chmod(0o755)
    return str(script)


def test_off_confirmed_by_status_is_fenced(tmp_path):
    outcome = asyncio.run(fence_off(agent(tmp_path, 2), {"plug": "server6"}, 10))
    assert outcome.fenced, outcome
    asked = (tmp_path / "asked").read_text()
    assert asked.index("action=off") < asked.index("action=status")
    assert asked.count("plug=server6") == 2


def test_a_device_that_says_off_while_the_node_runs_is_not_fenced(tmp_path):
    outcome = asyncio.run(fence_off(agent(tmp_path, 0), {}, 10))
    assert not outcome.fenced and "does not confirm" in outcome.reason
    missing = asyncio.run(fence_off(str(tmp_path / "none"), {}, 10))
    assert not missing.fenced and "not found" in missing.reason


@pytest.mark.skipif(shutil.which("fence_dummy") is None and
                    not __import__("os").path.exists("/usr/sbin/fence_dummy"),
                    reason="Debian's fence-agents (fence_dummy) is not installed")
def test_debians_fence_dummy_is_driven_through_its_protocol(tmp_path):
    status = tmp_path / "status"
    status.write_text("on")
    params = {"type": "file", "status_file": str(status)}
    outcome = asyncio.run(fence_off("fence_dummy", params, 30))
    assert outcome.fenced, outcome
    assert status.read_text().strip() == "off"
    # the agent waits power_timeout (20 s by default) for a power-off that never comes
    failing = asyncio.run(fence_off("fence_dummy", {"type": "fail", "power_timeout": "2"}, 30))
    assert not failing.fenced
