"""Scene 2: replicated MySQL. server5 crashes; server6 takes the volume, ext4 and MariaDB over.

The tutorial's second setup: `ha.cf`, `authkeys`, the `haresources` line
`IPaddr::VIP/24/eth0 drbddisk::mysqldata Filesystem::/dev/drbd1::/var/lib/mysql::ext4
mysqld` and `drbd-mysqldata.res`, on server5 and server6, both running `vigil
heartbeat`; `vigil volume` is the replicated /dev/drbd1 under each. A client
commits numbered rows through the VIP (autocommit INSERTs; an id counts as
committed once MariaDB acknowledged it). server5 crashes; server6's heartbeat
declares it dead after `deadtime`, promotes the volume, mounts it and starts
MariaDB; the client goes on. At the end every acknowledged row must be in the
table on server6.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pymysql

from vigil.demo import heartbeat_scene
from vigil.demo.heartbeat_scene import MARIADB_CNF, MYSQLD_SCRIPT
from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.lab import Lab, LabProcess
from vigil.lab.host import Host
from vigil.lab.seed import AUTHKEYS_NOTE, demo_file, lab_file, new_secret
from vigil.replication.loopdev import LoopIdentity
from vigil.testing import vigil_command
from vigil.testing.mariadb import install_database

TITLE = "replicated MySQL: heartbeat, a replicated volume and MariaDB; the primary crashes"
NODES = ("server5", "server6")
RESOURCE = "mysqldata"
#: The lab's disk for the volume: a file in each host's private /var (a user names a device).
BACKING = "/var/lib/vigil/mysqldata.img"
#: Small enough that the initial full sync at DRBD's default (slow) resync settings fits
#: the scene (~20 s); MariaDB with an 8 MiB redo log fits in it (25 MiB, 12 more at run).
BACKING_SIZE = "64M"
#: Scene 1's MariaDB settings (listen on the VIP), and a redo log that fits the lab's disk.
MARIADB_CNF_TEXT = heartbeat_scene.MARIADB_CNF_TEXT + "innodb_log_file_size = 8M\n"
APP_SQL = (
    "CREATE DATABASE app; CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'; "
    "GRANT ALL ON app.* TO 'app'@'%'; "
    "CREATE TABLE app.numbers (id INT PRIMARY KEY, note VARCHAR(32)) ENGINE=InnoDB;"
)
#: Rows the client commits before the crash, and after MariaDB is back.
ROWS_BEFORE = 200
ROWS_AFTER = 100
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+ (.*)$")


@dataclass
class ReplicationResult(SceneResult):
    """The scene's result, plus the loop devices its volumes used (tests check none is left)."""

    loops: list[LoopIdentity] = field(default_factory=list)


# -- small helpers ------------------------------------------------------------------------------
def _vigil_bin() -> str:
    """The `vigil` a sysadmin would run: the one next to this interpreter."""
    candidate = Path(sys.executable).parent / "vigil"
    return str(candidate) if candidate.exists() else "vigil"


def diff_lines(before: str, after: str) -> list[str]:
    """The changed lines only (`-old`, `+new`), each distinct change once."""
    lines: list[str] = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        if line not in lines:
            lines.append(line)
    return lines


def volume(host: Host, *args: str, check: bool = True, timeout: float = 60):
    return host.run(vigil_command("volume", *args), check=check, timeout=timeout)


def volume_status(host: Host) -> dict[str, Any]:
    return json.loads(volume(host, "status", RESOURCE, "--json").stdout)


def show_volume_status(timeline: Timeline, host: Host, why: str) -> dict[str, Any]:
    """`vigil volume status mysqldata` on a host, in the timeline."""
    done = volume(host, "status", RESOURCE, check=False)
    timeline.event(f"{host.name}: vigil volume status {RESOURCE}  ({why})")
    for line in done.stdout.rstrip().splitlines():
        timeline.note(f"  {line}")
    return volume_status(host) if done.returncode == 0 else {}


def wait_for(condition: Any, timeout: float, interval: float = 0.05) -> Any:
    """Poll until `condition()` is truthy or the deadline passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def vip_holders(lab: Lab, vip: str) -> list[str]:
    return [name for name in NODES if lab.host(name).is_up()
            and any(a.startswith(vip + "/") for a in lab.addresses(name))]


def log_events(process: LabProcess, pattern: str) -> list[tuple[float, str]]:
    """(wall-clock time, message) of the daemon's log lines whose message contains `pattern`."""
    found = []
    for line in process.output().splitlines():
        match = _LOG_LINE.match(line)
        if match and pattern in match.group(2):
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.append((stamp, match.group(2)))
    return found


def connect(client: Host, vip: str, timeout: float) -> pymysql.connections.Connection:
    with client.entered():
        return pymysql.connect(host=vip, user="app", password="app-pw", database="app",
                               connect_timeout=timeout, read_timeout=3, write_timeout=3,
                               autocommit=True)


def answers(client: Host, vip: str) -> bool:
    """MariaDB answers a query through the VIP (a fresh connection, short timeouts)."""
    try:
        connection = connect(client, vip, 0.5)
    except pymysql.MySQLError:
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM numbers")
            return True
    except pymysql.MySQLError:
        return False
    finally:
        with contextlib.suppress(Exception):
            connection.close()


class Committer(threading.Thread):
    """The client: INSERT id 1, 2, 3, ... through the VIP, one autocommit statement each.

    An id counts as committed when MariaDB acknowledged its INSERT. A failed
    statement's outcome is unknown (it may have been committed just before the
    crash), so the next id is a new one; a lost connection is opened again.
    """

    def __init__(self, client: Host, vip: str):
        super().__init__(name="committer", daemon=True)
        self.client, self.vip = client, vip
        self.acknowledged: list[tuple[int, float]] = []  # id, wall time
        self.attempted: list[int] = []
        self.failures: list[tuple[float, str]] = []  # wall time the attempt started, error
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def acked(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def acked_since(self, wall: float) -> int:
        with self._lock:
            return sum(1 for _, when in self.acknowledged if when >= wall)

    def run(self) -> None:
        connection = None
        number = 0
        while not self.stop.is_set():
            started = time.time()
            if connection is None:
                try:
                    connection = connect(self.client, self.vip, 1.0)
                except pymysql.MySQLError as exc:
                    self.failures.append((started, f"connect: {exc.args[-1]}"))
                    self.stop.wait(0.1)
                    continue
            number += 1
            self.attempted.append(number)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("INSERT INTO numbers (id, note) VALUES (%s, %s)",
                                   (number, f"row {number}"))
            except pymysql.MySQLError as exc:
                self.failures.append((started, f"insert {number}: {exc.args[-1]}"))
                with contextlib.suppress(Exception):
                    connection.close()
                connection = None
                continue
            with self._lock:
                self.acknowledged.append((number, time.time()))
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


# -- the scene ----------------------------------------------------------------------------------
def configure(lab: Lab, timeline: Timeline, result: ReplicationResult,
              ha_cf: str | None = None, disk_options: str | None = None) -> bool:
    """The tutorial's files on both nodes; only what this machine forces is changed, and shown.

    `ha_cf` replaces the tutorial's ha.cf (the fault campaign's shorter timings);
    `disk_options` adds a `disk { ... }` section to the resource (its resync rates).
    """
    secret = new_secret()
    tutorial_res = lab_file("drbd-mysqldata.res")
    res = demo_file("drbd-mysqldata.res", secret).replace("/dev/vdb", BACKING)
    if disk_options:
        res = res.replace("protocol C;", f"protocol C;\n  disk {{ {disk_options} }}", 1)
    for name in NODES:
        host = lab.host(name)
        host.write_file("/etc/ha.d/ha.cf", ha_cf or lab_file("ha.cf"))
        host.write_file("/etc/ha.d/authkeys", demo_file("authkeys", secret), mode=0o600)
        host.write_file("/etc/ha.d/haresources", lab_file("haresources.drbd-mysql"))
        host.write_file(f"/etc/drbd.d/{RESOURCE}.res", res)
        host.write_file(MARIADB_CNF, MARIADB_CNF_TEXT)
        host.write_file("/etc/init.d/mysqld", MYSQLD_SCRIPT, mode=0o755)
    timeline.event("server5, server6: /etc/ha.d/ha.cf, authkeys, haresources "
                   "(the tutorial's haresources.drbd-mysql) written unchanged but for the key:")
    timeline.note("  " + lab_file("haresources.drbd-mysql").strip())
    timeline.note("  " + AUTHKEYS_NOTE)
    timeline.event(f"/etc/drbd.d/{RESOURCE}.res: the tutorial's file; the disk is this "
                   f"machine's ({BACKING_SIZE} file, both `on` sections), and the link "
                   "authenticates (a random shared-secret, shown masked):")
    for line in diff_lines(tutorial_res, res):
        timeline.note(f"  {line.strip().replace(secret, '********')}")
    timeline.event(f"MariaDB: {MARIADB_CNF} = "
                   + ", ".join(MARIADB_CNF_TEXT.splitlines()[1:]))
    timeline.note("  (Debian listens on 127.0.0.1 only; the redo log is sized for the small "
                  "lab disk)")
    timeline.event("resource mysqld = /etc/init.d/mysqld (vigil's init.d/mysqld: mariadbd "
                   "without mysqld_safe)")
    return True


def prepare_volume(lab: Lab, timeline: Timeline, result: ReplicationResult,
                   size: str = BACKING_SIZE) -> bool:
    """drbdadm's first steps on backing files of `size`, then MariaDB's data directory on
    /dev/drbd1 (done once)."""
    server5 = lab.host("server5")
    for name in ("server6", "server5"):  # server5 connects, server6 listens: listener first
        host = lab.host(name)
        host.run(["truncate", "-s", size, BACKING])
        volume(host, "create-md", RESOURCE)
        volume(host, "up", RESOURCE)
        state = json.loads(host.read_file(f"/run/vigil/volume/{RESOURCE}/state.json"))
        result.loops.append(LoopIdentity(**state["loop"]))
    connected = wait_for(lambda: volume_status(server5)["connection"] == "Connected", 30, 0.2)
    timeline.event("server6, server5: vigil volume create-md mysqldata; vigil volume up "
                   f"mysqldata -> {'Connected' if connected else 'NOT connected'}")
    if not result.expect(bool(connected), "the volume's nodes did not connect within 30 s"):
        return False
    volume(server5, "primary", "--force", RESOURCE)
    timeline.event("server5: vigil volume primary --force mysqldata (its disk is the "
                   "initial sync source)")
    server5.run("mkfs.ext4 -q -F /dev/drbd1 && mkdir -p /var/lib/mysql && "
                "mount /dev/drbd1 /var/lib/mysql && chown mysql:mysql /var/lib/mysql",
                timeout=120)
    install_database(server5)
    used = server5.run(["df", "-h", "--output=used", "/var/lib/mysql"]).stdout.split()[-1]
    server5.run(["umount", "/var/lib/mysql"], timeout=60)
    volume(server5, "secondary", RESOURCE)
    timeline.event(f"server5: mkfs.ext4 /dev/drbd1; mariadb-install-db on it ({used} used); "
                   "umount; vigil volume secondary mysqldata")
    show_volume_status(timeline, server5, "the initial sync goes on in the background")
    began = time.monotonic()
    synced = volume(server5, "wait-sync", RESOURCE, "--timeout", "60", check=False, timeout=70)
    if not result.expect(synced.returncode == 0, "the initial sync did not finish within 60 s"):
        return False
    show_volume_status(timeline, server5, f"vigil volume wait-sync: {time.monotonic() - began:.1f}"
                       " s more; server6 has every block")
    return True


def start_heartbeat(lab: Lab, timeline: Timeline, result: ReplicationResult,
                    vip: str) -> dict[str, LabProcess]:
    daemons = {}
    for name in NODES:
        daemons[name] = lab.host(name).spawn([_vigil_bin(), "heartbeat", "-f"],
                                             name="vigil-heartbeat")
    ready = wait_for(lambda: all("heartbeat.ready" in d.output() for d in daemons.values()), 30)
    timeline.event("server5, server6: vigil heartbeat " + ("running" if ready else "NOT ready"))
    result.expect(bool(ready), "vigil heartbeat did not get ready within 30 s")
    return daemons


def crash_and_take_over(lab: Lab, timeline: Timeline, result: ReplicationResult,
                        daemons: dict[str, LabProcess], committer: Committer,
                        vip: str) -> float | None:
    """Crash server5; the wall time MariaDB answered through the VIP again (None: never)."""
    client, server6 = lab.host("client"), lab.host("server6")
    timeline.mark_fault("server5 crashes (power off: cables pulled, every process killed)")
    fault = time.time()
    lab.crash("server5")
    timeline.event("server5 is down (the lab's power-off itself takes this long); the "
                   "client's INSERTs hang, time out, and its reconnects fail")

    dead = wait_for(lambda: log_events(daemons["server6"], "peer.dead"), 90, 0.05)
    if not result.expect(bool(dead), "server6 never declared server5 dead (90 s)"):
        return None
    detected = dead[0][0] - fault
    result.timings["detected"] = detected
    timeline.event(f"server6's heartbeat declares server5 dead at fault+{detected:.2f} s "
                   "(deadtime 30): it takes the group over")
    back = wait_for(lambda: answers(client, vip), 60, 0.05)
    answered = time.time()
    if not result.expect(bool(back), "MariaDB did not answer through the VIP within 60 s "
                         "of server5 being declared dead"):
        return None
    result.timings["takeover"] = answered - dead[0][0]
    # The probe may beat the init script's own check by a moment: let its line be logged.
    wait_for(lambda: log_events(daemons["server6"], "resource=mysqld op=start rc=0"), 10)
    steps = []
    for pattern, label in (("address.added", "VIP added"),
                           ("resource=drbddisk::mysqldata op=primary rc=0", "promoted"),
                           ("filesystem.mounted", "ext4 mounted"),
                           ("resource=mysqld op=start rc=0", "mysqld started")):
        found = log_events(daemons["server6"], pattern)
        if found:
            steps.append(f"{label} +{found[-1][0] - dead[0][0]:.2f} s")
    timeline.event(f"MariaDB answers through the VIP: takeover {answered - dead[0][0]:.2f} s "
                   "after server5 was declared dead")
    if steps:
        timeline.note("  on server6: " + ", ".join(steps))
    show_volume_status(timeline, server6, "promoted; its peer is gone")
    return answered


def run(lab: Lab, timeline: Timeline) -> ReplicationResult:
    """Play the scene; every claim that did not hold is in `problems`."""
    result = ReplicationResult("replicated MySQL")
    timeline.scene(TITLE)
    vip = lab.address("vip")
    client = lab.host("client")
    if not configure(lab, timeline, result) or not prepare_volume(lab, timeline, result):
        return result
    daemons = start_heartbeat(lab, timeline, result, vip)
    server5 = lab.host("server5")
    started = wait_for(lambda: server5.run(["mariadb", "-e", "SELECT 1"],
                                           check=False).returncode == 0, 90, 0.2)
    holders = vip_holders(lab, vip)
    if not result.expect(bool(started) and holders == ["server5"],
                         f"server5 did not start the group (VIP on {holders})"):
        return result
    server5.run(["mariadb", "-e", APP_SQL])
    timeline.event(f"server5 holds the group: VIP {vip}, mysqldata Primary, /dev/drbd1 on "
                   "/var/lib/mysql, mysqld; database app, table numbers created")

    committer = Committer(client, vip)
    committer.start()
    try:
        before = wait_for(lambda: committer.acked() >= ROWS_BEFORE, 60)
        timeline.event(f"client: {committer.acked()} rows committed through the VIP "
                       "(autocommit INSERTs, each acknowledged id recorded)")
        if not result.expect(bool(before), f"the client did not get {ROWS_BEFORE} commits "
                             "acknowledged within 60 s"):
            return result
        back_at = crash_and_take_over(lab, timeline, result, daemons, committer, vip)
        if back_at is None:
            return result
        more = wait_for(lambda: committer.acked_since(back_at) >= ROWS_AFTER, 60)
        result.expect(bool(more), f"the client did not get {ROWS_AFTER} more commits "
                      "acknowledged within 60 s of the takeover")
        timeline.event(f"client: {committer.acked_since(back_at)} more rows committed "
                       "through the VIP since MariaDB came back")
    finally:
        committer.stop.set()
        committer.join(15)
    count_rows(lab, timeline, result, committer, vip)
    # The outage itself is the takeover time; what counts as failed is what failed after it.
    result.requests_failed = sum(1 for started, _ in committer.failures if started >= back_at)
    holders = vip_holders(lab, vip)
    timeline.event(f"the VIP is held by: {', '.join(holders) or 'nobody'}")
    result.expect(holders == ["server6"], f"exactly server6 should hold the VIP, not {holders}")
    return result


def count_rows(lab: Lab, timeline: Timeline, result: ReplicationResult, committer: Committer,
               vip: str) -> None:
    """Every acknowledged id must be in the table; unacknowledged ones may be (crash mid-commit)."""
    try:
        connection = connect(lab.host("client"), vip, 2.0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM numbers")
            present = {row[0] for row in cursor.fetchall()}
        connection.close()
    except pymysql.MySQLError as exc:
        result.problems.append(f"cannot read the table through the VIP: {exc}")
        return
    acknowledged = {number for number, _ in committer.acknowledged}
    lost = sorted(acknowledged - present)
    unacknowledged = sorted(present - acknowledged)
    phantom = sorted(present - set(committer.attempted))
    result.rows_lost = len(lost)
    timeline.event(f"rows the client saw committed: {len(acknowledged)}; rows in the table on "
                   f"server6: {len(present)}; lost: {len(lost)}")
    timeline.note(f"  present but never acknowledged (in flight at the crash): "
                  f"{len(unacknowledged)} {unacknowledged[:5] if unacknowledged else ''}")
    result.expect(not lost, f"{len(lost)} acknowledged rows missing: {lost[:10]}")
    result.expect(not phantom, f"rows the client never sent: {phantom[:10]}")
    result.notes["rows"] = (f"{len(acknowledged)} acknowledged, {len(present)} in the table, "
                            f"{len(unacknowledged)} present unacknowledged")
    result.notes["client"] = (f"{len(committer.failures)} INSERTs/connects failed while "
                              "MariaDB was away (the outage)")
