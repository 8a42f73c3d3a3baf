"""Services for real in a lab host: Debian's nginx and MariaDB scripts, OCF agents, monitoring."""

import contextlib
import os
import signal
import sys
import textwrap
import time

import pytest

from vigil.data import init_script
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

VIGIL = [sys.executable, "-m", "vigil"]


def resource(host, *args, check=True, timeout=90):
    return host.run([*VIGIL, "resource", *args], check=check, timeout=timeout)


def addresses(host):
    return host.run(["ip", "-o", "addr", "show"]).stdout


def db_answers(host):
    done = host.run(["mariadb", "-N", "-e", "select 40+2"], check=False, timeout=10)
    return done.returncode == 0 and done.stdout.strip() == "42"


def pids_of(host, program):
    """PIDs of `program` running inside this host (never anyone else's)."""
    found = []
    for pid in host.pids():
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == program:
                    found.append(pid)
        except OSError:
            continue
    return found


def test_nginx_through_debians_init_script(pair_lab):
    server5, client = pair_lab.host("server5"), pair_lab.host("client")
    assert resource(server5, "status", "nginx", check=False).returncode == 7
    resource(server5, "start", "nginx")
    assert resource(server5, "status", "nginx").returncode == 0
    answer = client.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                         f"http://{server5.address()}/"]).stdout
    assert answer == "200"
    resource(server5, "stop", "nginx")
    assert resource(server5, "status", "nginx", check=False).returncode == 7
    assert pids_of(server5, "nginx") == []


def test_mariadb_through_an_lsb_script(pair_lab):
    server5 = pair_lab.host("server5")
    install(server5, "mysqld", MYSQLD)
    assert resource(server5, "status", "mysqld", check=False).returncode == 7
    resource(server5, "start", "mysqld")
    try:
        assert db_answers(server5)
        assert resource(server5, "status", "mysqld").returncode == 0
    finally:
        resource(server5, "stop", "mysqld")
    assert not db_answers(server5)
    assert resource(server5, "status", "mysqld", check=False).returncode == 7
    assert pids_of(server5, "mariadbd") == []


def test_debians_ocf_agents_dummy_and_ipaddr2(pair_lab, tmp_path):
    server5 = pair_lab.host("server5")
    dummy = f"ocf:heartbeat:Dummy::state={tmp_path}/dummy.state"
    assert resource(server5, "status", dummy, check=False).returncode == 7
    resource(server5, "start", dummy)
    assert resource(server5, "monitor", dummy).returncode == 0
    resource(server5, "stop", dummy)
    assert resource(server5, "monitor", dummy, check=False).returncode == 7
    vip = pair_lab.address("vip")
    ipaddr2 = f"ocf:heartbeat:IPaddr2::ip={vip}::cidr_netmask=24::nic=eth0"
    assert resource(server5, "status", ipaddr2, check=False).returncode == 7
    resource(server5, "start", ipaddr2)
    assert f"{vip}/24" in addresses(server5)
    assert resource(server5, "monitor", ipaddr2).returncode == 0
    resource(server5, "stop", ipaddr2)
    assert f"{vip}/24" not in addresses(server5)
    bad = resource(server5, "start", "ocf:heartbeat:IPaddr2::ip=not-an-address", check=False)
    assert bad.returncode in (2, 5, 6)  # the agent's own verdict on a bad parameter


FAILING = """\
    #!/bin/sh
    case "$1" in start) echo "cannot start"; exit 1;; stop) exit 0;;
    status) echo "stopped"; exit 3;; esac
"""
STUCK = """\
    #!/bin/sh
    case "$1" in start) touch /run/stuck.up;; stop) echo "device busy"; exit 1;;
    status) [ -f /run/stuck.up ] && echo running && exit 0; echo stopped; exit 3;; esac
"""
HUNG = """\
    #!/bin/sh
    case "$1" in start) echo $$ > /run/hung.pid; trap '' TERM; while :; do sleep 1; done;;
    stop) exit 0;; status) echo stopped; exit 3;; esac
"""


def install(host, name, text):
    host.write_file(f"/etc/ha.d/resource.d/{name}", textwrap.dedent(text), mode=0o755)


def test_failed_start_rolls_back_and_hung_agent_is_killed(pair_lab):
    server5 = pair_lab.host("server5")
    vip = pair_lab.address("vip")
    install(server5, "failing", FAILING)
    install(server5, "hung", HUNG)
    server5.write_file("/etc/ha.d/haresources", textwrap.dedent(f"""\
        # two groups that cannot start
        server5.example.com IPaddr2::{vip}/24/eth0 failing
        server5.example.com IPaddr2::198.51.100.101/24 \\
            hung
    """))
    failed = resource(server5, "start", f"IPaddr2::{vip}/24/eth0", "--arp-count", "0",
                      check=False)
    assert failed.returncode == 1 and "failing failed to start" in failed.stdout
    assert vip not in addresses(server5)  # rolled back
    started = time.monotonic()
    hung = resource(server5, "start", "IPaddr2::198.51.100.101/24", "--timeout", "1",
                    "--arp-count", "0", check=False)
    assert hung.returncode == 1 and "timed out after 1 s" in hung.stdout
    assert time.monotonic() - started < 20
    assert "198.51.100.101" not in addresses(server5)
    pid = int(server5.run(["cat", "/run/hung.pid"]).stdout)
    wait_until(lambda: pid not in server5.pid_map(), 5, "the hung agent to be killed")


def test_failed_stop_blocks_release(pair_lab):
    server5 = pair_lab.host("server5")
    vip = pair_lab.address("vip")
    install(server5, "stuck", STUCK)
    server5.write_file("/etc/ha.d/haresources",
                       f"server5.example.com IPaddr2::{vip}/24/eth0 stuck\n")
    resource(server5, "start", f"IPaddr2::{vip}/24/eth0", "--arp-count", "0")
    blocked = resource(server5, "stop", f"IPaddr2::{vip}/24/eth0", "--stop-retries", "2",
                       check=False)
    assert blocked.returncode == 1
    assert "NOT released" in blocked.stderr and "stuck would not stop" in blocked.stdout
    assert blocked.stdout.count("stop    stuck") == 1 and "stop    IPaddr2" not in blocked.stdout
    assert f"{vip}/24" in addresses(server5)  # the group stays held: never run twice
    status = resource(server5, "status", f"IPaddr2::{vip}/24/eth0", check=False)
    assert status.returncode == 0 and "ALL" in status.stdout


#: The seed's `mysqld` resource on Debian: the project's LSB script for MariaDB
#: (Debian's /etc/init.d/mariadb runs mysqld_safe, which restarts a killed server by
#: itself and would hide what vigil's monitor does).
MYSQLD = init_script("mysqld")


def test_killed_database_comes_back_then_repeated_failure_fails_the_group(pair_lab):
    server5 = pair_lab.host("server5")
    vip = pair_lab.address("vip")
    install(server5, "mysqld", MYSQLD)
    group = f"IPaddr::{vip}/24/eth0"
    server5.write_file("/etc/ha.d/haresources", f"server5.example.com {group} mysqld\n")
    resource(server5, "start", group, "--arp-count", "1")
    watcher = None
    try:
        assert db_answers(server5)
        interval = 1.0
        watcher = server5.spawn([*VIGIL, "resource", "monitor", "--watch", group,
                                 "--interval", str(interval), "--restart-limit", "2",
                                 "--arp-count", "1"], name="monitor")
        wait_until(lambda: "monitoring" in watcher.output(), 10, "the monitor to start")
        recoveries = []
        for number in range(1, 3):
            recoveries.append(kill_database_and_time_recovery(server5, watcher))
            # the next fault only once this restart is complete (not in the middle of it)
            wait_until(lambda n=number: watcher.output().count("] restarted: mysqld") == n, 60,
                       lambda n=number: f"restart {n} to finish:\n{watcher.output()}")
        print(f"\nkill -9 mysqld -> database answers again: "
              f"{', '.join(f'{t:.2f} s' for t in recoveries)} (monitor interval {interval} s)")
        for seconds in recoveries:
            assert seconds < interval + 30  # interval + start time, generous on a busy box
        # The third failure within the window is one more than the 2 restarts allowed.
        kill_database(server5)
        # wait() collects the exit status too: nsenter, which holds it, ends just after
        assert watcher.wait(60), f"the monitor to give the group up:\n{watcher.output()}"
        assert watcher.returncode == 1
        log = watcher.output()
        print(log)
        assert log.count("restart:") == 2 and "group IPaddr" in log and "FAILED" in log
        assert log.count("] restarted: mysqld") == 2
        assert "more than the 2 restarts allowed" in log
        # It released the group so that the peer can take it: no address, no database.
        assert f"{vip}/24" not in addresses(server5)
        assert not db_answers(server5)
    finally:
        if watcher is not None and watcher.alive():
            watcher.stop()
        resource(server5, "stop", group, check=False)


def kill_database(host):
    for pid in pids_of(host, "mariadbd"):  # the machine's PIDs: signal from here
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pids_of(host, "mariadbd"), 10, "mariadbd to die")


def kill_database_and_time_recovery(host, watcher):
    wait_until(lambda: db_answers(host), 60, "the database to answer before the kill")
    started = time.monotonic()
    kill_database(host)
    wait_until(lambda: db_answers(host), 60,
               lambda: f"the database to answer again; monitor said:\n{watcher.output()}")
    return time.monotonic() - started
