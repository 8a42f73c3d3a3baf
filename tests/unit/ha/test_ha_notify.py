"""notify_command: which events run it, with what environment, bounded and never blocking."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from vigil.ha import notify
from vigil.ha.notify import Notifier, notification


def test_node_and_group_events_are_notified_with_their_facts():
    dead = notification("peer.dead", {"node": "server5", "silent": "30.1s"}, "server6")
    assert dead is not None and dead.event == "peer.dead"
    assert dead.env["VIGIL_TARGET"] == "server5" and dead.env["VIGIL_SILENT"] == "30.1s"
    assert dead.env["VIGIL_NODE"] == dead.env["HA_CURHOST"] == "server6"
    started = notification("action.done", {"action": "StartGroup", "target": "198.51.100.100",
                                           "ok": True}, "server6")
    assert started is not None and started.event == "group.started"
    assert started.env["VIGIL_TARGET"] == "198.51.100.100"
    failed = notification("action.done", {"action": "StopGroup", "ok": False}, "n")
    assert failed is not None and failed.event == "group.stop_failed"


def test_other_events_are_not():
    assert notification("heartbeat.late", {"node": "x"}, "n") is None
    assert notification("action.done", {"action": "Announce", "ok": True}, "n") is None
    assert notification("notify.failed", {}, "n") is None


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "notify"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_the_program_runs_with_the_event_and_its_environment(tmp_path):
    out = tmp_path / "out"
    program = _script(tmp_path, f'echo "$1 $VIGIL_TARGET $HA_CURHOST" >> {out}')

    async def main() -> None:
        notifier = Notifier(program, "server6")
        notifier.submit("peer.dead", {"node": "server5"})
        notifier.submit("ha.decision", {"reason": "not notified"})
        notifier.submit("action.done", {"action": "StartGroup", "target": "g1", "ok": True})
        await notifier.close()

    asyncio.run(main())
    assert sorted(out.read_text().splitlines()) == ["group.started g1 server6",
                                                    "peer.dead server5 server6"]


def test_at_most_four_run_at_once_and_the_queue_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "MAX_QUEUED", 3)
    running = tmp_path / "running"
    running.mkdir()
    gate = tmp_path / "go"
    program = _script(tmp_path, f"touch {running}/$$; while [ ! -e {gate} ]; do sleep 0.01; "
                                f"done; rm {running}/$$")

    async def main() -> tuple[int, int]:
        notifier = Notifier(program, "n")
        for _ in range(10):
            notifier.submit("link.dead", {"node": "p", "link": "eth0"})
        deadline = time.monotonic() + 10
        while len(os.listdir(running)) < notify.MAX_RUNNING and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        at_once = len(os.listdir(running))
        waiting = len(notifier._queue)
        gate.touch()
        await notifier.close()
        return at_once, waiting

    at_once, waiting = asyncio.run(main())
    assert at_once == notify.MAX_RUNNING
    assert waiting == 3  # 10 submitted: 4 ran, 3 waited, 3 were dropped


def test_a_program_that_hangs_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "TIMEOUT", 0.2)
    program = _script(tmp_path, "sleep 30")

    async def main() -> float:
        notifier = Notifier(program, "n")
        started = time.monotonic()
        notifier.submit("peer.dead", {"node": "p"})
        await notifier.close()
        return time.monotonic() - started

    assert asyncio.run(main()) < 5


def test_a_missing_program_is_logged_not_raised(tmp_path, caplog):
    async def main() -> None:
        notifier = Notifier(str(tmp_path / "absent"), "n")
        notifier.submit("peer.dead", {"node": "p"})
        await notifier.close()

    asyncio.run(main())
    assert any("notify.failed" in r.getMessage() for r in caplog.records)


