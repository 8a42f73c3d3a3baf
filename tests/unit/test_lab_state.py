"""The lab's state file: hosts boot from threads of their own, and each saves it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from vigil.lab.lab import STATE_FILE, Lab
from vigil.lab.topology import pair_topology


def test_threads_saving_the_state_at_once_never_lose_it_or_leave_a_temporary(tmp_path: Path):
    lab = Lab(pair_topology(), run_id="statetest", root=tmp_path)
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def save_often() -> None:
        start.wait()
        try:
            for _ in range(60):
                lab.save()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=save_often) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    state = json.loads((tmp_path / "statetest" / STATE_FILE).read_text())
    assert state["run_id"] == "statetest"
    assert sorted(p.name for p in (tmp_path / "statetest").iterdir()) == [STATE_FILE]
