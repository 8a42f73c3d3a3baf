"""A boot that hangs says where its processes wait in the kernel."""

from __future__ import annotations

import subprocess
import time

from vigil.lab.lab import _where_stuck


def test_a_hung_process_tree_is_described_with_its_wait_channels():
    tree = subprocess.Popen(["sh", "-c", "sleep 30 | cat"])
    try:
        # The shell and its two children exec and settle at their own pace:
        # wait until every one of them is past exec and asleep.
        deadline = time.monotonic() + 10
        report = ""
        while time.monotonic() < deadline:
            report = _where_stuck(tree.pid)
            settled = report.startswith("; waiting: sh[") and "cat[" in report
            if settled and "sleep[" in report and "nanosleep" in report:
                break
            time.sleep(0.01)
        assert report.startswith("; waiting: sh[")
        assert f"sh[{tree.pid}] S in " in report
        assert "sleep[" in report and "nanosleep" in report
    finally:
        tree.kill()
        tree.wait()


def test_a_process_gone_is_described_as_nothing():
    done = subprocess.Popen(["true"])
    done.wait()
    assert _where_stuck(done.pid) == ""
