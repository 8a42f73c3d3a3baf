"""The userspace proxy with a worker process, run as users run it (`vigil director
start` with VIGIL_PROXY_WORKERS=2) on the seed's ldirectord.cf: both processes
serve the VIP, the counters add up, a killed worker is replaced, and stop leaves
no process behind."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from director_lab_support import VIP, control, http_get, nginx, vigil, weights

from vigil.lab.seed import lab_file
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

RS1, RS2 = "198.51.100.1", "198.51.100.2"
WORKER = "vigil.director.backends.proxy_workers"


@pytest.fixture(autouse=True)
def two_processes(monkeypatch):
    monkeypatch.setenv("VIGIL_DIRECTOR_BACKEND", "userspace")
    monkeypatch.setenv("VIGIL_PROXY_WORKERS", "2")


def processes(host, needle: str) -> list[int]:
    """The machine's PIDs of the host's processes whose command line holds `needle`."""
    found = []
    for pid in host.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile
        if needle.encode() in cmdline:
            found.append(pid)
    return found


def log_tail(server5) -> str:
    """The director's last log lines, for a failure's message."""
    return "\n".join(server5.read_file("/var/log/ldirectord.log").splitlines()[-30:])


def connections(server5) -> int:
    stats = control(server5, {"command": "status"})["stats"]
    return sum(s["counters"]["conns"] for s in stats)


def test_a_worker_serves_is_replaced_when_killed_and_stop_leaves_no_process(seed_lab):
    server5 = seed_lab.host("server5")
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    nginx(seed_lab.host("rs1"), "rs1")
    nginx(seed_lab.host("rs2"), "rs2")
    server5.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    vigil(server5, "director", "start")
    try:
        wait_until(lambda: weights(server5) == {RS1: 1, RS2: 1}, 15, "both real servers up")
        workers = processes(server5, WORKER)
        assert len(workers) == 1, log_tail(server5)
        answers = [http_get(seed_lab) for _ in range(30)]
        assert set(answers) == {"rs1", "rs2"}
        # counted once, whichever process took each
        assert connections(server5) == 30, log_tail(server5)

        os.kill(workers[0], signal.SIGKILL)  # a process of this test's lab, by its PID
        wait_until(lambda: (len(processes(server5, WORKER)) == 1
                            and processes(server5, WORKER) != workers), 10, "a new worker")
        wait_until(lambda: "proxy.worker_died" in server5.read_file("/var/log/ldirectord.log"),
                   5, "the death logged")
        assert {http_get(seed_lab) for _ in range(10)} == {"rs1", "rs2"}
        # the dead worker's counts, read just before the kill, are kept
        assert connections(server5) == 40, log_tail(server5)
    finally:
        vigil(server5, "director", "stop", check=False)
    wait_until(lambda: not processes(server5, WORKER)
               and not processes(server5, "vigil.director.child"), 10,
               "no director or worker process left")
