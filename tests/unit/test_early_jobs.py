"""The suite's early jobs: started once, run one after the other, read by their tests."""

from __future__ import annotations

import threading

import pytest

from vigil.testing.early import EarlyJobs


def test_jobs_run_once_in_order_and_their_results_reach_the_reader():
    jobs: EarlyJobs[str] = EarlyJobs()
    ran: list[str] = []
    gate = threading.Event()

    def job(name: str):
        def run() -> str:
            gate.wait(10)
            ran.append(name)
            return name.upper()
        return run

    jobs.start("a", job("a"))
    jobs.start("b", job("b"))
    jobs.start("a", job("again"))  # a name already queued is not queued twice
    assert jobs.pending()
    gate.set()
    assert jobs.result("b", job("inline")) == "B"
    jobs.wait()
    assert not jobs.pending()
    assert ran == ["a", "b"]
    assert jobs.result("a", job("inline")) == "A"


def test_a_job_never_started_runs_when_read_and_a_failure_reaches_its_reader():
    jobs: EarlyJobs[int] = EarlyJobs()
    assert jobs.result("never", lambda: 7) == 7
    assert not jobs.pending()

    def fails() -> int:
        raise RuntimeError("guest did not boot")

    jobs.start("bad", fails)
    jobs.wait()  # a failure is for the reader to see, not for the wait
    with pytest.raises(RuntimeError, match="guest did not boot"):
        jobs.result("bad", lambda: 0)
