"""A boot that hangs says where its processes wait in the kernel."""

from __future__ import annotations

import re
import subprocess
import time

from vigil.lab.lab import _where_stuck


def test_a_hung_process_tree_is_described_with_its_wait_channels():
    tree = subprocess.Popen(["sh", "-c", "sleep 30 | cat"])
    try:
        # The shell and its two children exec and settle at their own pace, and a busy
        # machine may find any of them runnable at a given look: wait until all three are
        # past exec and asleep (the shell in wait, sleep in nanosleep, cat in read).
        deadline = time.monotonic() + 10
        report = ""
        while time.monotonic() < deadline:
            report = _where_stuck(tree.pid)
            if "nanosleep" in report and all(re.search(rf"{name}\[\d+\] S in ", report)
                                             for name in ("sh", "sleep", "cat")):
                break
            time.sleep(0.01)
        assert report.startswith(f"; waiting: sh[{tree.pid}] S in "), report
        assert re.search(r"; sleep\[\d+\] S in [^;]*nanosleep", report), report
        assert re.search(r"; cat\[\d+\] S in ", report), report
    finally:
        tree.kill()
        tree.wait()


def test_a_process_gone_is_described_as_nothing():
    done = subprocess.Popen(["true"])
    done.wait()
    assert _where_stuck(done.pid) == ""
