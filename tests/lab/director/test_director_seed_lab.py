"""The seed's ldirectord.cf, as written (addresses mapped), on server5 with the
userspace backend: rs1 and rs2 run nginx, the client goes through the VIP."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import itertools

from director_lab_support import (
    VIP,
    control,
    http_get,
    nginx,
    states,
    timed_wait,
    vigil,
    weights,
)

from vigil.lab.seed import lab_file
from vigil.testing import wait_until

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def userspace_data_path(monkeypatch):
    """These tests are about the director and its userspace proxy; the kernel data
    paths have their own (tests/lab/dataplane)."""
    monkeypatch.setenv("VIGIL_DIRECTOR_BACKEND", "userspace")

RS1, RS2 = "198.51.100.1", "198.51.100.2"
HUNG_SERVER = """
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.2", 80)); s.listen(64)
held = []
while True:
    conn, _ = s.accept(); held.append(conn)   # accept, never answer
"""


@pytest.fixture
def director_lab(seed_lab):
    server5 = seed_lab.host("server5")
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    servers = {
        "rs1": nginx(seed_lab.host("rs1"), "rs1"),
        "rs2": nginx(seed_lab.host("rs2"), "rs2"),
        "fallback": nginx(server5, "fallback", listen="127.0.0.1:80", name="sorry"),
    }
    server5.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    vigil(server5, "director", "start")
    yield seed_lab, servers
    vigil(server5, "director", "stop", check=False)


def test_seed_config_balances_quiesces_recovers_and_falls_back(director_lab):
    lab, servers = director_lab
    server5 = lab.host("server5")
    timed_wait(lambda: weights(server5) == {RS1: 1, RS2: 1}, 15, "both real servers up")
    answers = [http_get(lab) for _ in range(6)]
    assert sorted(answers) == ["rs1"] * 3 + ["rs2"] * 3
    assert all(a != b for a, b in itertools.pairwise(answers))  # round robin

    # Stop nginx on rs1: weight 0 (quiescent) within checkinterval + checktimeout.
    servers["rs1"].stop()
    took = timed_wait(lambda: weights(server5) == {RS1: 0, RS2: 1}, 1 + 3 + 3,
                      "rs1 quiesced")
    print(f"rs1 stop -> weight 0 in {took:.2f} s (checkinterval 1 + checktimeout 3)")
    assert [http_get(lab) for _ in range(20)] == ["rs2"] * 20

    # Start it again: back in rotation.
    servers["rs1"] = lab.host("rs1").spawn(
        ["nginx", "-c", "/etc/nginx.conf", "-g", "daemon off;"], name="nginx-again")
    took = timed_wait(lambda: weights(server5) == {RS1: 1, RS2: 1}, 10, "rs1 back")
    print(f"rs1 start -> weight 1 in {took:.2f} s")
    assert {http_get(lab) for _ in range(4)} == {"rs1", "rs2"}

    # Both down: the fallback server answers.
    servers["rs1"].stop()
    servers["rs2"].stop()
    timed_wait(lambda: weights(server5).get("127.0.0.1") == 1, 10, "fallback in the table")
    assert {http_get(lab) for _ in range(4)} == {"fallback"}
    lines = vigil(server5, "lvs", "list", "-n").stdout.splitlines()
    assert lines[1:3] == ["Prot LocalAddress:Port Scheduler Flags",
                          "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"]
    assert lines[3] == f"TCP  {VIP}:80 rr"
    assert sorted(line.split()[1:4] for line in lines[4:]) == [
        ["127.0.0.1:80", "Route", "1"], [f"{RS1}:80", "Route", "0"],
        [f"{RS2}:80", "Route", "0"]]

    # rs2 comes back as a hung server (accepts, never answers): not healthy.
    servers["rs2"] = lab.host("rs2").spawn(["python3", "-c", HUNG_SERVER], name="hung")
    wait_until(lambda: lab.host("rs2").run("ss -ltn | grep -q ':80 '", check=False)
               .returncode == 0, 5, "hung listener")
    started = time.monotonic()
    # Checks of rs2 now end by timeout, each 3 s: it stays down, the fallback stays.
    wait_until(lambda: "timed out" in _message(server5, RS2), 10, "rs2 timing out")
    assert time.monotonic() - started >= 2.5
    assert weights(server5) == {RS1: 0, RS2: 0, "127.0.0.1": 1}
    assert http_get(lab) == "fallback"


def _message(server5, real: str) -> str:
    for row in control(server5, {"command": "status"})["health"]:
        if row["real"].startswith(real + ":"):
            return row["message"]
    return ""


def test_autoreload_applies_the_difference_and_maintenance_drains(director_lab):
    lab, _ = director_lab
    server5 = lab.host("server5")
    timed_wait(lambda: weights(server5) == {RS1: 1, RS2: 1}, 15, "both real servers up")
    status = control(server5, {"command": "status"})
    checks_before = status["checks_run"]

    # Edit the file: rs2 weight 3, wrr, and a maintenance directory.
    text = lab_file("ldirectord.cf")
    text = text.replace(f"real={RS2}:80 gate", f"real={RS2}:80 gate 3")
    text = text.replace("scheduler=rr", "scheduler=wrr")
    text = text.replace("quiescent=yes", "quiescent=yes\nmaintenancedir=/etc/ha.d/maintenance")
    server5.run(["mkdir", "-p", "/etc/ha.d/maintenance"])
    server5.write_file("/etc/ha.d/ldirectord.cf", text)
    timed_wait(lambda: weights(server5) == {RS1: 1, RS2: 3}, 10, "autoreload applied")
    # Healthy servers kept their state: never unchecked, never at weight 0 meanwhile.
    assert set(states(server5).values()) == {"up"}
    log = server5.read_file("/var/log/ldirectord.log")
    assert "config.reloaded why=autoreload" in log
    changed = [line.split(" change=", 1)[1] for line in log.splitlines()
               if "config.changed why=autoreload" in line]
    assert any("scheduler" in c for c in changed), changed
    assert any(f"real {RS2}:80 weight 1 -> 3" in c for c in changed), changed
    assert any("maintenancedir None -> /etc/ha.d/maintenance" in c for c in changed), changed
    assert "real.unchecked" not in log and f"real.down service=tcp:{VIP}:80" not in log
    wait_until(lambda: control(server5, {"command": "status"})["checks_run"] > checks_before,
               5, "checks going on after the reload")
    answers = [http_get(lab) for _ in range(8)]
    assert answers.count("rs2") == 6 and answers.count("rs1") == 2

    # A maintenance file drains rs1 (weight 0) without any failed check.
    server5.write_file("/etc/ha.d/maintenance/198.51.100.1", "")
    timed_wait(lambda: weights(server5) == {RS1: 0, RS2: 3}, 5, "rs1 drained")
    assert {http_get(lab) for _ in range(6)} == {"rs2"}
    server5.run(["rm", "/etc/ha.d/maintenance/198.51.100.1"])
    timed_wait(lambda: weights(server5) == {RS1: 1, RS2: 3}, 5, "rs1 back from maintenance")

    # SIGHUP with an unchanged file changes nothing in the table.
    before = control(server5, {"command": "status"})["table"]
    vigil(server5, "director", "reload")
    wait_until(lambda: log_count(server5, "config.unchanged") >= 1, 5,
               "the reload found nothing to apply")
    assert control(server5, {"command": "status"})["table"] == before


def log_count(host, needle: str) -> int:
    return host.read_file("/var/log/ldirectord.log").count(needle)


def test_status_stop_and_lsb_exit_codes(director_lab):
    lab, _ = director_lab
    server5 = lab.host("server5")
    done = vigil(server5, "director", "status")
    assert "is running with pid" in done.stdout
    vigil(server5, "director", "stop")
    assert vigil(server5, "director", "status", check=False).returncode == 3
    with pytest.raises(OSError):
        http_get(lab, timeout=2)


def test_seed_ipvsadm_edits_build_a_hand_kept_table(seed_lab):
    """The seed's hand-made table (configs/ipvsadm.sh), line by line through `vigil lvs`."""
    from vigil.lab.seed import lab_file

    server5 = seed_lab.host("server5")
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    nginx(seed_lab.host("rs1"), "rs1")
    nginx(seed_lab.host("rs2"), "rs2")
    try:
        for line in lab_file("ipvsadm.sh").splitlines():
            if line.startswith("ipvsadm "):
                vigil(server5, "lvs", *line.split()[1:])
        lines = vigil(server5, "lvs", "list", "-n").stdout.splitlines()
        assert lines[3:] == [
            f"TCP  {VIP}:80 rr",
            f"  -> {RS1 + ':80':<28} Route   1      0          0         ",
            f"  -> {RS2 + ':80':<28} Route   1      0          0         ",
        ]
        answers = [http_get(seed_lab) for _ in range(4)]
        assert sorted(answers) == ["rs1", "rs1", "rs2", "rs2"]
        vigil(server5, "lvs", "-e", "-t", f"{VIP}:80", "-r", f"{RS1}:80", "-g", "-w", "0")
        assert {http_get(seed_lab) for _ in range(4)} == {"rs2"}
        vigil(server5, "lvs", "-d", "-t", f"{VIP}:80", "-r", f"{RS2}:80")
        lines = vigil(server5, "lvs", "list", "-n").stdout.splitlines()
        assert len(lines) == 5 and f"{RS1}:80" in lines[4]
        stats = vigil(server5, "lvs", "list", "-n", "--stats").stdout.splitlines()
        assert stats[1].split() == ["Prot", "LocalAddress:Port", "Conns", "InPkts", "OutPkts",
                                    "InBytes", "OutBytes"]
        assert stats[3].split()[:3] == ["TCP", f"{VIP}:80", "8"]  # 8 connections so far
        bad = vigil(server5, "lvs", "-a", "-t", f"{VIP}:80", "-r", f"{RS1}:80", check=False)
        assert bad.returncode == 1 and "exists already" in bad.stderr
    finally:
        vigil(server5, "director", "--no-config", "stop", check=False)


def test_the_ldirectord_resource_of_haresources_runs_the_director(seed_lab):
    """heartbeat's `ldirectord` resource (haresources.lvs) starts, reports and stops it.

    Resources run with heartbeat's small fixed environment, so the director picks
    its data path itself: the kernel's (direct routing) where it can, hence the
    real servers are set up as the seed's realserver.sh does."""
    server5 = seed_lab.host("server5")
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    for name in ("rs1", "rs2"):
        nginx(seed_lab.host(name), name)
        vigil(seed_lab.host(name), "realserver", "start", "--vip", VIP)
    server5.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    path = {"PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"}

    def resource(verb: str):
        return vigil_env(server5, path, "resource", verb, "ldirectord")

    try:
        assert resource("start").returncode == 0
        wait_until(lambda: weights(server5) == {RS1: 1, RS2: 1}, 15, "director checking")
        assert resource("status").returncode == 0
        # the kernel path hashes connections onto slots: 16 of them reach both servers
        assert {http_get(seed_lab) for _ in range(16)} == {"rs1", "rs2"}
        assert resource("stop").returncode == 0
        assert resource("status").returncode != 0
        with pytest.raises(OSError):
            http_get(seed_lab, timeout=2)
    finally:
        vigil(server5, "director", "stop", check=False)


def vigil_env(host, env, *args):
    return host.run([sys.executable, "-m", "vigil", *args], env=env, check=False, timeout=60)
