"""Scene 1: the tutorial's heartbeat pair serving MariaDB behind the VIP.

server5 and server6 get the tutorial's ha.cf, authkeys and haresources.mysqld
unchanged and run `vigil heartbeat`. A client on another host queries MariaDB
through the VIP all along (a new connection per query, as a web application
does), so every claim of the timeline is what the client saw:

1. server5 loses power: server6 declares it dead after deadtime (30 s, the
   tutorial's) and takes the VIP and MariaDB;
2. server5 boots, its heartbeat starts: the group goes home (auto_failback on);
3. kill -9 of MariaDB alone on server5: vigil's monitoring restarts it in
   place (heartbeat v1 only ever watched nodes, never the services).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pymysql

from vigil.data import init_script
from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.lab import Lab, LabProcess
from vigil.lab.seed import AUTHKEYS_NOTE, demo_file, lab_file, new_secret

TITLE = "heartbeat pair: the VIP and MariaDB on server5/server6"
NODES = ("server5", "server6")
VIGIL = str(Path(sys.executable).parent / "vigil")

#: The LSB script the tutorial's `mysqld` resource names (vigil's own, package data).
MYSQLD_SCRIPT = init_script("mysqld")

#: What a sysadmin adds to Debian's MariaDB so that clients reach it through the VIP
#: (Debian binds to 127.0.0.1 only; name resolution would wait on a DNS the lab lacks).
#: The lab's hosts share the machine's /tmp, where two labs' servers (same PIDs in
#: their own PID namespaces) would take the same temporary file names: each host's
#: /run/mysqld is its own.
MARIADB_CNF = "/etc/mysql/mariadb.conf.d/60-vigil-demo.cnf"
MARIADB_CNF_TEXT = "[mysqld]\nbind-address = 0.0.0.0\nskip-name-resolve\ntmpdir = /run/mysqld\n"

#: vigil's own settings beyond ha.cf: check the database every second, not every 15 s
#: (the default for LSB scripts), so the kill -9 part of the scene stays short.
VIGIL_CF_TEXT = "agent mysqld\n    monitor_interval 1\n"

#: The demo database on each node's own datadir, written while the server is down
#: (`mariadbd --bootstrap` reads one statement per line).
BOOTSTRAP_SQL = """\
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.origin (datadir VARCHAR(64) NOT NULL);
DELETE FROM demo.origin;
INSERT INTO demo.origin VALUES ('{node}');
CREATE USER IF NOT EXISTS 'demo'@'%' IDENTIFIED BY 'demo';
GRANT SELECT ON demo.* TO 'demo'@'%';
"""
QUERY = "SELECT @@hostname, (SELECT datadir FROM demo.origin LIMIT 1)"

#: Generous deadlines: the machine's two cores are shared.
START_DEADLINE = 40.0
TAKEOVER_DEADLINE = 45.0  # beyond deadtime
FAILBACK_DEADLINE = 40.0
RESTART_DEADLINE = 30.0


# -- the client ----------------------------------------------------------------------------
@dataclass
class Answer:
    """One client query: sent `at`, finished `done`, and who answered (None: it failed)."""

    at: float
    done: float
    node: str | None
    datadir: str | None = None
    error: str | None = None


@dataclass(eq=False)
class Client(threading.Thread):
    """Queries MariaDB through the VIP from the client host, one connection per query.

    A query is sent every `interval` whatever the earlier ones do (as requests
    reach a web application), so a query stuck in a connect timeout never hides
    the moment the service answers again: that moment is the earliest `done`.
    """

    lab: Lab
    vip: str
    interval: float = 0.2
    #: at most this many queries in flight (each gives up after ~2 s)
    in_flight: int = 20
    answers: list[Answer] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    workers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name="demo-client", daemon=True)

    def query(self) -> None:
        at = time.monotonic()
        with self.lab.host("client").entered():
            answer = self._ask(at)
        self.answers.append(answer)  # list.append is atomic: no lock needed

    def _ask(self, at: float) -> Answer:
        try:
            connection = pymysql.connect(host=self.vip, user="demo", password="demo",
                                         database="demo", connect_timeout=2,
                                         read_timeout=2, write_timeout=2)
        except pymysql.MySQLError as error:
            return Answer(at, time.monotonic(), None, error=_short(error))
        try:
            with connection.cursor() as cursor:
                cursor.execute(QUERY)
                hostname, datadir = cursor.fetchone()
            return Answer(at, time.monotonic(), str(hostname).split(".")[0], str(datadir))
        except pymysql.MySQLError as error:
            return Answer(at, time.monotonic(), None, error=_short(error))
        finally:
            with contextlib.suppress(Exception):
                connection.close()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.workers = [w for w in self.workers if w.is_alive()]
            if len(self.workers) < self.in_flight:
                worker = threading.Thread(target=self.query, name="demo-query", daemon=True)
                worker.start()
                self.workers.append(worker)
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        for worker in self.workers:
            worker.join(timeout=10)

    # -- reading what it saw ---------------------------------------------------------------
    def since(self, start: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= start]

    def first_from(self, node: str, start: float, after_failure: bool = False) -> Answer | None:
        """The earliest answer from `node` to a query sent at or after `start`.

        With `after_failure`, only queries sent after the first one that failed count.
        """
        answers = self.since(start)
        if after_failure:
            failed = [a.at for a in answers if a.node is None]
            if not failed:
                return None
            answers = [a for a in answers if a.at >= min(failed)]
        return min((a for a in answers if a.node == node), key=lambda a: a.done, default=None)

    def failures(self, start: float, end: float) -> list[Answer]:
        return [a for a in list(self.answers) if start <= a.at < end and a.node is None]


def _short(error: BaseException) -> str:
    text = str(error.args[1] if len(error.args) > 1 else error)
    return text.split(" (")[0][:60]


# -- the scene -----------------------------------------------------------------------------
@dataclass
class Pair:
    """The two nodes' heartbeat daemons, and the scene's observations of them."""

    lab: Lab
    timeline: Timeline
    result: SceneResult
    vip: str
    daemons: dict[str, LabProcess] = field(default_factory=dict)

    def holders(self) -> list[str]:
        """Which nodes carry the VIP, read from their interfaces."""
        return [name for name in NODES if self.lab.carries(name, self.vip)]

    def start_heartbeat(self, name: str) -> bool:
        process = self.lab.host(name).spawn([VIGIL, "heartbeat", "-f"], name="vigil-heartbeat")
        self.daemons[name] = process
        ready = poll(lambda: "heartbeat.ready" in process.output() or not process.alive(),
                     START_DEADLINE)
        return self.result.expect(
            ready and process.alive(),
            f"vigil heartbeat did not start on {name}: {process.output()[-300:]!r}")

    def log_time(self, name: str, needle: str, since_wall: float) -> float | None:
        """Wall-clock time of the first line of `name`'s log containing `needle`."""
        for line in self.daemons[name].output().splitlines():
            if needle in line:
                stamp = _log_stamp(line)
                if stamp is not None and stamp >= since_wall - 0.002:  # ms in the log
                    return stamp
        return None


def _log_stamp(line: str) -> float | None:
    """vigil's log lines start with `2026-01-02 03:04:05,678`."""
    try:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return None


def poll(condition: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    """Wait for `condition` with a deadline; False (never an exception) when it passes."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def pids_of(lab: Lab, host: str, program: str) -> list[int]:
    """PIDs (as the machine numbers them) of `program` in one host."""
    found = []
    for pid in lab.host(host).pids():
        with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as comm:
            if comm.read().strip() == program:
                found.append(pid)
    return found


def configure(lab: Lab, timeline: Timeline, result: SceneResult,
              ha_cf: str | None = None) -> bool:
    """The tutorial's files into /etc/ha.d of both nodes; MariaDB ready on each.

    `ha_cf` replaces the tutorial's ha.cf (the fault campaign's shorter timings).
    """
    secret = new_secret()
    for name in NODES:
        host = lab.host(name)
        host.write_file("/etc/ha.d/ha.cf", ha_cf or lab_file("ha.cf"))
        host.write_file("/etc/ha.d/authkeys", demo_file("authkeys", secret), mode=0o600)
        host.write_file("/etc/ha.d/haresources", lab_file("haresources.mysqld"))
        host.write_file("/etc/ha.d/vigil.cf", VIGIL_CF_TEXT)
        host.write_file("/etc/init.d/mysqld", MYSQLD_SCRIPT, mode=0o755)
        host.write_file(MARIADB_CNF, MARIADB_CNF_TEXT)
        boot = host.run(["mariadbd", "--bootstrap", "--user=mysql", "--datadir=/var/lib/mysql",
                         "--log-error=/var/log/mysql-bootstrap.err"],
                        input="USE mysql;\n" + BOOTSTRAP_SQL.format(node=name), check=False,
                        timeout=120)
        if not result.expect(boot.returncode == 0,
                             f"MariaDB's datadir on {name} could not be prepared: "
                             f"{(boot.stderr or boot.stdout).strip()[-200:]}"):
            return False
    haresources = lab_file("haresources.mysqld").strip()
    timeline.event("server5, server6: /etc/ha.d/ha.cf, authkeys, haresources from the tutorial, "
                   "unchanged but for the key:")
    timeline.note(f"haresources: {haresources}")
    timeline.note(AUTHKEYS_NOTE)
    timeline.note("ha.cf: keepalive 2, deadtime 30, warntime 10, initdead 60, bcast eth0, "
                  "auto_failback on, ping 198.51.100.250 (the gateway)")
    timeline.event("vigil's own setting, /etc/ha.d/vigil.cf: "
                   + VIGIL_CF_TEXT.strip().replace("\n   ", ";"))
    timeline.note("(LSB scripts are checked every 15 s by default; 1 s keeps the scene short)")
    timeline.event("resource mysqld = /etc/init.d/mysqld (vigil's init.d/mysqld: mariadbd "
                   "without mysqld_safe)")
    timeline.event(f"MariaDB: {MARIADB_CNF} = bind-address 0.0.0.0, skip-name-resolve "
                   "(Debian listens on 127.0.0.1 only)")
    timeline.event("no shared storage in this scene: each node has its own datadir "
                   "/var/lib/mysql, table demo.origin says whose")
    check = lab.host("server5").run([VIGIL, "check", "--dir", "/etc/ha.d"], check=False)
    timeline.event(f"vigil check on server5: exit {check.returncode}")
    for line in (check.stdout + check.stderr).splitlines():
        if ": note: " in line or ": warning: " in line or ": error: " in line:
            timeline.note(line.split(": ", 1)[1] if line.startswith("/etc") else line)
    timeline.note("(ha.cf needs no change: vigil does ipfail's job itself, apiauth has no "
                  "clients)")
    return result.expect(check.returncode == 0, f"vigil check failed: {check.stdout.strip()}")


def run(lab: Lab, timeline: Timeline) -> SceneResult:
    """Play the heartbeat pair: crash, failback, a killed database."""
    result = SceneResult("heartbeat pair")
    timeline.scene(TITLE)
    vip = lab.address("vip")
    if not configure(lab, timeline, result):
        return result
    pair = Pair(lab, timeline, result, vip)
    client = Client(lab, vip)
    try:
        if not start(pair):
            return result
        client.start()
        calm = time.monotonic()
        if not poll(lambda: client.first_from("server5", calm) is not None, 15):
            result.problems.append("the client got no answer from server5 through the VIP")
            return result
        answer = client.first_from("server5", calm)
        assert answer is not None
        timeline.event(f"client: {QUERY} via {vip} -> {answer.node}.example.com, "
                       f"datadir of {answer.datadir}")
        windows: list[tuple[float, float]] = []
        for phase in (crash, failback, kill_database):
            window = phase(pair, client)
            if window is None:
                return result
            windows.append(window)
        end_state(pair, client, windows)
    finally:
        client.stop()
    return result


def start(pair: Pair) -> bool:
    lab, timeline, result = pair.lab, pair.timeline, pair.result
    for name in NODES:
        if not pair.start_heartbeat(name):
            return False
    timeline.event("vigil heartbeat -f started on server5 and server6 (as systemd's unit runs it)")
    # the group's start ends once Debian's init script has seen mariadbd answer: a
    # client started before that would count the database's own start as failures
    started = poll(lambda: pair.holders() == ["server5"]
                   and bool(pids_of(lab, "server5", "mariadbd"))
                   and pair.log_time("server5", "group.started", 0.0) is not None,
                   START_DEADLINE)
    if not result.expect(started, f"server5 did not take its group (VIP on {pair.holders()})"):
        return False
    timeline.event(f"server5 holds {pair.vip} and runs MariaDB (home node); server6 stands by")
    show_status(pair, "server6", ("node", "ping", "group"))
    return True


def show_status(pair: Pair, name: str, kinds: tuple[str, ...]) -> None:
    """A few lines of `vigil status` run in the node, as a sysadmin would look."""
    status = pair.lab.host(name).run([VIGIL, "status"], check=False, timeout=30)
    pair.timeline.event(f"{name}$ vigil status")
    for line in status.stdout.splitlines():
        if line.strip().startswith(kinds):
            pair.timeline.note(f"  {line.strip()}")


def crash(pair: Pair, client: Client) -> tuple[float, float] | None:
    """server5 loses power; server6 notices after deadtime and takes the group."""
    lab, timeline, result = pair.lab, pair.timeline, pair.result
    timeline.mark_fault("server5 loses power (lab.crash): links cut, every process killed")
    fault_wall, fault = time.time(), time.monotonic()
    lab.crash("server5")
    timeline.event("server5 is off: its addresses and processes are gone")
    dead = poll(lambda: pair.log_time("server6", "peer.dead", fault_wall) is not None,
                TAKEOVER_DEADLINE)
    dead_at = pair.log_time("server6", "peer.dead", fault_wall)
    if not result.expect(dead and dead_at is not None,
                         f"server6 did not declare server5 dead within {TAKEOVER_DEADLINE:g} s"):
        return None
    assert dead_at is not None
    detected = dead_at - fault_wall
    timeline.event(f"server6 declares server5 dead ({detected:.2f} s after the fault, "
                   "deadtime 30)")
    back = poll(lambda: client.first_from("server6", fault) is not None, TAKEOVER_DEADLINE)
    answer = client.first_from("server6", fault)
    if not result.expect(back and answer is not None,
                         "the client got no answer from server6 after the takeover "
                         f"(VIP on {pair.holders()})"):
        return None
    assert answer is not None
    takeover = answer.done - fault - detected
    needles = {"VIP added": "address.added", "mysqld started": "group.started"}
    poll(lambda: all(pair.log_time("server6", n, dead_at) for n in needles.values()), 5)
    steps = [(what, pair.log_time("server6", needle, dead_at))
             for what, needle in needles.items()]
    timeline.event("server6 (its log): " + ", ".join(
        f"{what} +{at - dead_at:.2f} s" for what, at in steps if at is not None)
        + " after the detection")
    timeline.event(f"client: answered by {answer.node}.example.com (datadir of {answer.datadir})"
                   f" {takeover:.2f} s after the detection")
    result.timings["crash detected"] = detected
    result.timings["takeover"] = max(takeover, 0.0)
    result.expect(pair.holders() == ["server6"],
                  f"after the takeover the VIP is on {pair.holders()}, not on server6 alone")
    result.expect(all(at is not None for _, at in steps),
                  "server6 logged no start of the VIP and mysqld after the detection")
    failed = client.failures(fault, answer.done)
    timeline.note(f"{len(failed)} client queries failed between the crash and the takeover")
    show_status(pair, "server6", ("node server5", "group"))
    return fault, answer.done


def failback(pair: Pair, client: Client) -> tuple[float, float] | None:
    """server5 boots; its heartbeat starts; the group goes home (auto_failback on)."""
    lab, timeline, result = pair.lab, pair.timeline, pair.result
    lab.boot("server5")
    timeline.event("server5 boots (/etc and /var kept, /run and network state fresh)")
    begun = time.monotonic()
    if not pair.start_heartbeat("server5"):
        return None
    timeline.mark("vigil heartbeat -f started on server5: the times below count from here",
                  at=begun)
    home = poll(lambda: client.first_from("server5", begun) is not None
                and pair.holders() == ["server5"], FAILBACK_DEADLINE)
    answer = client.first_from("server5", begun)
    if not result.expect(home and answer is not None,
                         f"the group did not go back to server5 (VIP on {pair.holders()})"):
        return None
    assert answer is not None
    last6 = max((a.done for a in client.since(begun) if a.node == "server6"), default=None)
    gap = answer.done - last6 if last6 is not None else None
    timeline.event(f"client: answered by {answer.node}.example.com again "
                   f"({answer.done - begun:.2f} s after server5's heartbeat started)")
    if gap is not None:
        timeline.note(f"the service was away for {gap:.2f} s (server6 stops it, then server5 "
                      "starts it: never both)")
    result.timings["failback"] = answer.done - begun
    return begun, answer.done


def kill_database(pair: Pair, client: Client) -> tuple[float, float] | None:
    """kill -9 of mariadbd alone on the active node: vigil's monitor restarts it."""
    lab, timeline, result = pair.lab, pair.timeline, pair.result
    active = pair.holders()
    if not result.expect(len(active) == 1, f"no single active node before the kill: {active}"):
        return None
    node = active[0]
    # the client may be answered while the group's start still runs (the init script
    # waits for mariadbd): monitoring begins once the start has finished
    if not result.expect(poll(lambda: pair.log_time(node, "group.started", 0.0) is not None,
                              RESTART_DEADLINE),
                         f"{node} never finished starting its group"):
        return None
    victims = pids_of(lab, node, "mariadbd")
    if not result.expect(len(victims) == 1, f"{node} runs {len(victims)} mariadbd, not one"):
        return None
    fault_wall, fault = time.time(), time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.kill(victims[0], signal.SIGKILL)
    timeline.mark_fault(f"kill -9 mariadbd on {node} (the node and its heartbeat are fine)")
    restarted = poll(lambda: pair.log_time(node, "monitor.restarted", fault_wall) is not None,
                     RESTART_DEADLINE)
    if not result.expect(restarted, f"{node}'s monitor did not restart mysqld within "
                         f"{RESTART_DEADLINE:g} s (VIP on {pair.holders()})"):
        return None
    noticed = pair.log_time(node, "monitor.restart ", fault_wall)
    done = pair.log_time(node, "monitor.restarted", fault_wall)
    if noticed is not None and done is not None:
        timeline.event(f"vigil's monitor on {node} (its log): mysqld failed, seen "
                       f"+{noticed - fault_wall:.2f} s, restarted in place "
                       f"+{done - fault_wall:.2f} s after the kill")
    back = poll(lambda: client.first_from(node, fault, after_failure=True) is not None, 15)
    answer = client.first_from(node, fault, after_failure=True)
    if not result.expect(back and answer is not None,
                         f"the client saw no failure then an answer from {node} after the "
                         f"kill (VIP on {pair.holders()})"):
        return None
    assert answer is not None
    timeline.event(f"client: answered by {answer.node}.example.com again "
                   f"({answer.done - fault:.2f} s after the kill)")
    result.expect(pair.holders() == [node], f"the VIP moved during the restart: {pair.holders()}")
    result.timings["mysqld restart"] = answer.done - fault
    return fault, answer.done


def end_state(pair: Pair, client: Client, windows: list[tuple[float, float]]) -> None:
    """Exactly one VIP holder; no failed query outside the fault windows."""
    lab, timeline, result = pair.lab, pair.timeline, pair.result
    settle = time.monotonic()
    poll(lambda: len(client.since(settle)) >= 10, 10)  # a second of calm traffic
    client.stop()
    holders = pair.holders()
    timeline.event(f"end: the VIP is on {', '.join(holders) or 'no host'}; both nodes' eth0:")
    for name in NODES:
        shown = lab.host(name).run(["ip", "-br", "-4", "addr", "show", "dev", "eth0"],
                                   check=False).stdout.split()
        timeline.note(f"{name}$ ip -br -4 addr show eth0: {' '.join(shown)}")
    result.expect(len(holders) == 1, f"{len(holders)} hosts hold the VIP at the end: {holders}")
    answers = list(client.answers)
    failed = [a for a in answers if a.node is None]
    outside = [a for a in failed
               if not any(a.done >= start and a.at < end for start, end in windows)]
    result.requests_failed = len(outside)
    mixed = [a for a in answers if a.node and a.node != a.datadir]
    result.expect(not mixed,
                  f"{len(mixed)} answers came from a server with another node's datadir")
    timeline.event(f"client: {len(answers)} queries, {len(failed) - len(outside)} failed while "
                   f"a fault was open, {len(outside)} at any other time")
    for answer in outside[:5]:
        timeline.note(f"failed outside a fault: {answer.error}")
    result.expect(not outside, f"{len(outside)} client queries failed outside the faults")
    result.notes["client"] = (f"{len(answers)} queries through the VIP; "
                              f"{len(failed) - len(outside)} failed while a fault was open")
