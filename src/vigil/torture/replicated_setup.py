"""The replicated setup under faults: the demo's MariaDB on a `vigil volume`, written to.

Built by the demo's own replication scene (`configure`, `prepare_volume`,
`Committer`); a reading client (the heartbeat scene's) tells who serves, the
committer's acknowledged ids are checked against the table at the end.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from vigil.demo import replication_scene as scene
from vigil.demo.heartbeat_scene import VIGIL_CF_TEXT
from vigil.lab import Lab
from vigil.lab.host import Host, LabProcess
from vigil.replication import control
from vigil.torture.checks import (
    Injected,
    Outcome,
    Rows,
    check_rows,
    dual_windows,
    in_sync,
    split_losses,
    unexcused_spans,
    writable_primary,
)
from vigil.torture.heartbeat_setup import (
    NODES,
    HeartbeatSetup,
    Sampler,
    SetupFailed,
    campaign_ha_cf,
)
from vigil.torture.schedule import Fault, FaultKind

#: The reading client's database (the heartbeat scene's query, on the shared datadir).
DEMO_SQL = (
    "CREATE DATABASE demo; CREATE TABLE demo.origin (datadir VARCHAR(64) NOT NULL); "
    "INSERT INTO demo.origin VALUES ('mysqldata'); "
    "CREATE USER 'demo'@'%' IDENTIFIED BY 'demo'; GRANT SELECT ON demo.* TO 'demo'@'%';"
)
#: The replication link's TCP port (drbd-mysqldata.res).
REPLICATION_PORT = 7789
#: A node's own firewall table that cuts the replication link (`cut-replication`).
CUT_TABLE = "vigil_torture_cut"
START_DEADLINE = 120.0
#: cut-then-crash: seconds the crashed node stays off
CRASH_BOOT_AFTER = 2.0
#: how long a booting node's volumes unit waits for its peer (wfc-timeout)
WFC_TIMEOUT = 15
#: How often the volume watcher asks both nodes' volume daemons for their roles.
VOLUME_SAMPLE_EVERY = 0.25
#: Once the writes stopped: how long the two disks may take to be connected and in sync,
#: and how long `vigil volume verify` may take.
SYNC_DEADLINE = 180.0
VERIFY_DEADLINE = 120.0
#: After a fault: how long the volumes may take to be in sync again before the two
#: disks are compared (a resync at c-min-rate 32M moves the whole 512 MiB in 16 s).
EACH_SYNC_DEADLINE = 30.0
#: The resource's resync rates. The committer writes all the time, so a resync runs at
#: c-min-rate: at DRBD's default (250 KiB/s) the standby, once behind (a split brain's
#: recovery, a cut), never caught up in a 30-minute campaign and no failover could
#: happen; these are the rates docs/volume.md recommends, with c-min-rate raised for a
#: database that never stops writing.
RESYNC_RATES = "c-plan-ahead 20; c-fill-target 16M; c-max-rate 400M; c-min-rate 32M;"
#: The volume's backing files: the committer inserts a few hundred rows a second, and a
#: 30-minute campaign filled the demo's 64 MiB (InnoDB then could not start: ENOSPC).
VOLUME_SIZE = "512M"
#: Each node's backing disk as the volume sees it: a FUSE file over the image that the
#: disk-error fault makes fail (vigil.testing.faulty_disk); it passes I/O through
#: otherwise.
FAULTY_MOUNT = "/var/lib/vigil/faulty"
FAULTY_DISK = f"{FAULTY_MOUNT}/disk"
#: After a split brain's recovery: how long the two volumes may take to connect again.
RECONNECT_DEADLINE = 30.0


@dataclass(frozen=True)
class SplitBrain:
    """A split brain of the volume and the operator's recovery of it."""

    #: wall-clock times: the fault that split the nodes began, the recovery was asked for
    began: float
    recovered: float
    #: the node whose changes were discarded, and the one kept
    victim: str
    keeper: str
    reason: str
    reconnected: bool


def volume_status(host: Host, timeout: float = 1.0) -> dict[str, Any] | None:
    """A node's volume status from its daemon's control socket (None: no answer)."""
    try:
        socket = host.path(f"/run/vigil/volume/{scene.RESOURCE}/control.sock")
        answer = control.request(socket, "status", timeout=timeout)
    except Exception:  # a node powered off, its daemon restarting: no status this time
        return None
    status = answer.get("status")
    return status if answer.get("ok") and isinstance(status, dict) else None


def differing_offsets(log_path: Path, since: int) -> list[int]:
    """The byte offsets a verify reported out of sync, from the volume log after `since`."""
    with contextlib.suppress(OSError), log_path.open("rb") as log_file:
        log_file.seek(since)
        found = re.findall(rb"volume\.out_of_sync .*?offset=(\d+)", log_file.read())
        return [int(offset) for offset in found]
    return []


def run_verify(host: Host, poll: float) -> tuple[dict[str, Any] | None, str]:
    """`vigil volume verify` on `host`, waited for: its result, or None and why not."""
    started = scene.volume(host, "verify", scene.RESOURCE, check=False)
    if started.returncode != 0:
        return None, f"vigil volume verify failed: {(started.stderr or started.stdout).strip()}"

    def verify_done() -> dict[str, Any] | None:
        status = volume_status(host)
        verify = (status or {}).get("verify") or {}
        return verify if verify.get("running") is False else None

    verify = scene.wait_for(verify_done, VERIFY_DEADLINE, poll)
    if not verify:
        return None, f"vigil volume verify did not finish within {VERIFY_DEADLINE:g} s"
    return verify, ""


def writable_primaries(lab: Lab) -> frozenset[str]:
    """The nodes whose volume takes writes (Primary, I/O not suspended), as their
    daemons say."""
    found = set()
    for node in NODES:
        status = volume_status(lab.host(node))
        if status is not None and writable_primary(status):
            found.add(node)
    return frozenset(found)


class ReplicatedSetup(HeartbeatSetup):
    """haresources.drbd-mysql: VIP, drbddisk::mysqldata, Filesystem on /dev/drbd1, mysqld."""

    name = "replicated"
    #: the resource's `disk` options (None: the tutorial file's, DRBD's defaults)
    resync_rates: str | None = RESYNC_RATES

    def __init__(self, lab: Lab):
        super().__init__(lab)
        self.replication = scene.ReplicationResult("torture replicated")
        self.result = self.pair.result = self.replication
        self.committer = scene.Committer(lab.host("client"), self.pair.vip)
        self.rows: Rows | None = None
        #: which volumes take writes, sampled
        self.volumes = Sampler(lambda: writable_primaries(lab), VOLUME_SAMPLE_EVERY)
        #: what the end's comparison of the two disks found (violations)
        self.disk_findings: list[str] = []
        #: `vigil volume verify` at the end: blocks compared, blocks that differed, the
        #: seconds until the disks were in sync after the writes stopped, the verify's
        self.verified: tuple[int, int, float, float] | None = None
        #: volume split brains met after faults, each recovered as an operator would
        self.split_brains: list[SplitBrain] = []
        #: acknowledged rows lost inside a split brain's window (the configuration's cost)
        self.split_lost: list[int] = []
        #: each node's backing disk process (vigil.testing.faulty_disk)
        self.disks: dict[str, LabProcess] = {}
        #: what went wrong in a node's boot (its volumes unit), said after the fault
        self.boot_problems: list[str] = []
        #: whether the disks are compared after every fault, and how often they were
        self.verify_each = True
        self.compared = 0

    def configure(self) -> None:
        timeline = self.pair.timeline
        if not scene.configure(self.lab, timeline, self.replication,
                               ha_cf=campaign_ha_cf(), disk_options=self.resync_rates):
            raise SetupFailed("; ".join(self.result.problems))
        res = f"/etc/drbd.d/{scene.RESOURCE}.res"
        for node in ("server5", "server6"):
            host = self.lab.host(node)
            host.write_file("/etc/ha.d/vigil.cf", VIGIL_CF_TEXT)
            host.write_file(res, host.read_file(res).replace(scene.BACKING, FAULTY_DISK))
            host.run(["truncate", "-s", VOLUME_SIZE, scene.BACKING])
            self._start_disk(node)
        timeline.event(f"both: the backing disk is {FAULTY_DISK}, a FUSE file over "
                       f"{scene.BACKING} that the disk-error fault makes fail")
        if not scene.prepare_volume(self.lab, timeline, self.replication, VOLUME_SIZE):
            raise SetupFailed("; ".join(self.result.problems))

    def ready(self) -> None:
        server5 = self.lab.host("server5")
        up = scene.wait_for(lambda: server5.run(["mariadb", "-e", "SELECT 1"],
                                                check=False).returncode == 0,
                            START_DEADLINE, 0.2)
        if not up:
            raise SetupFailed(f"MariaDB did not start on server5 within {START_DEADLINE:g} s")
        server5.run(["mariadb", "-e", scene.APP_SQL + " " + DEMO_SQL])
        self.committer.start()
        self.volumes.start()

    def _start_disk(self, node: str) -> None:
        """The node's backing disk (vigil.testing.faulty_disk), once it serves."""
        host = self.lab.host(node)
        self.disks[node] = host.spawn([sys.executable, "-m", "vigil.testing.faulty_disk",
                                       scene.BACKING, FAULTY_MOUNT], name="faulty-disk")
        if not scene.wait_for(lambda: host.run(["test", "-e", FAULTY_DISK],
                                               check=False).returncode == 0, 20, 0.1):
            raise SetupFailed(f"{node}: the faulty disk did not serve {FAULTY_DISK}: "
                              f"{self.disks[node].output()[-300:]}")

    def _disk_error(self, fault: Fault, target: str) -> str:
        """Every I/O of the node's disk, or with bad blocks those that touch one, fails
        for the hold (on-io-error detach, DRBD's default, leaves it diskless at the
        first error); then the disk works again and the operator attaches it, under
        the running primary too (it resyncs while it serves)."""
        host = self.lab.host(target)
        disk = self.disks[target]
        disk.signal(signal.SIGHUP if fault.kind is FaultKind.BAD_BLOCKS else signal.SIGUSR1)
        time.sleep(fault.hold)
        disk.signal(signal.SIGUSR2)
        status = volume_status(host) or {}
        if status.get("disk") != "Diskless":  # (bad blocks: no I/O met one)
            return f"{target}'s volume kept its disk ({status.get('disk')})"
        said = [f"{target} diskless ({status.get('role')})"]
        attached = scene.volume(host, "attach", scene.RESOURCE, check=False)
        said.append("attached" if attached.returncode == 0 else
                    f"attach exited {attached.returncode}: {attached.stderr.strip()[-200:]}")
        return "; ".join(said)

    def after_boot(self, node: str) -> None:
        """The node's disk, the volumes unit (`vigil volume up`, `wait-connect`), then
        vigil heartbeat."""
        host = self.lab.host(node)
        self._start_disk(node)
        up = scene.volume(host, "up", scene.RESOURCE, check=False)
        if up.returncode != 0:  # said after the fault: the boot went on without a volume
            self.boot_problems.append(f"{node}: vigil volume up exited {up.returncode}: "
                                      f"{(up.stderr or up.stdout).strip()[-300:]}")
        scene.volume(host, "wait-connect", "--wfc-timeout", str(WFC_TIMEOUT),
                     "--degr-wfc-timeout", str(WFC_TIMEOUT), "--outdated-wfc-timeout",
                     str(WFC_TIMEOUT), scene.RESOURCE, check=False)
        self._start_daemon(node)

    def other_fault(self, fault: Fault, target: str) -> str | None:
        if fault.kind in (FaultKind.DISK_ERROR, FaultKind.BAD_BLOCKS):
            return self._disk_error(fault, target)
        if fault.kind is FaultKind.CUT_THEN_CRASH:
            # the Primary writes on alone; then it dies, its firewall with it
            self._cut_replication(target)
            time.sleep(fault.hold)
            self.lab.crash(target)
            time.sleep(CRASH_BOOT_AFTER)
            self.lab.boot(target)
            self.after_boot(target)
            return None
        if fault.kind is not FaultKind.CUT_REPLICATION:
            super().other_fault(fault, target)
        self._cut_replication(target)
        time.sleep(fault.hold)
        self.lab.host(target).run(["nft", "delete", "table", "inet", CUT_TABLE])
        return None

    def _cut_replication(self, target: str) -> None:
        """The node's own firewall drops the replication link's port, both ways."""
        host = self.lab.host(target)
        port = REPLICATION_PORT
        host.run(["nft", "-f", "-"], input=(
            f"table inet {CUT_TABLE} {{\n"
            f"  chain in {{ type filter hook input priority 0; tcp dport {port} drop; "
            f"tcp sport {port} drop; }}\n"
            f"  chain out {{ type filter hook output priority 0; tcp dport {port} drop; "
            f"tcp sport {port} drop; }}\n}}\n"))

    def after_fault(self, outcome: Outcome) -> list[str]:
        """Recover a volume split brain, then compare the two disks."""
        lines, self.boot_problems = self.boot_problems, []
        lines += self._recover_split_brain(outcome)
        return lines + self._compare_after_fault(outcome)

    def _recover_split_brain(self, outcome: Outcome) -> list[str]:
        """A volume split brain (a split let both nodes promote; the tutorial's DRBD file
        has no fencing and DRBD's default after-sb policies disconnect): recover as DRBD's
        documentation tells an operator to, keeping the data of the node that holds the
        group now. Left alone, the volumes would stay StandAlone for the rest of the
        campaign and every later failover would serve the old side's data."""
        statuses = {node: volume_status(self.lab.host(node)) for node in NODES}
        alone = [n for n, s in statuses.items() if s and s.get("connection") == "StandAlone"]
        if not alone:
            return []
        reason = str((statuses[alone[0]] or {}).get("reason") or "StandAlone")
        keeper = outcome.holder_after
        if keeper is None:
            return [f"volumes StandAlone on {', '.join(alone)} ({reason}) and no node alone "
                    "holds the group: not recovered"]
        victim = next(n for n in NODES if n != keeper)
        wall_offset = time.time() - time.monotonic()
        asked = time.monotonic()
        scene.volume(self.lab.host(victim), "secondary", scene.RESOURCE, check=False)
        scene.volume(self.lab.host(victim), "connect", "--discard-my-data", scene.RESOURCE,
                     check=False)
        scene.volume(self.lab.host(keeper), "connect", scene.RESOURCE, check=False)
        reconnected = bool(scene.wait_for(
            lambda: all((s := volume_status(self.lab.host(n))) is not None
                        and s.get("connection") == "Connected" for n in NODES),
            RECONNECT_DEADLINE, 0.2))
        self.split_brains.append(SplitBrain(outcome.injected.injected + wall_offset,
                                            asked + wall_offset, victim, keeper, reason,
                                            reconnected))
        return [f"volume split brain ({reason}): {victim}'s changes discarded as an operator "
                f"would (secondary, connect --discard-my-data there, connect on {keeper}); "
                + (f"connected again +{time.monotonic() - asked:.2f} s" if reconnected else
                   f"NOT connected again within {RECONNECT_DEADLINE:g} s")]

    def _compare_after_fault(self, outcome: Outcome) -> list[str]:
        """Once the fault settled and the volumes are in sync again, `vigil volume verify`
        compares the two disks while the writes go on (exact: its requests travel in the
        stream between the writes). A difference found here names the fault that made it,
        long before a failover would run the database on it; the differing blocks are
        then resynced (disconnect, connect: DRBD's procedure) so later faults start equal."""
        holder = outcome.holder_after
        if holder is None or not self.verify_each:
            return []
        host = self.lab.host(holder)
        if not scene.wait_for(lambda: (s := volume_status(host)) is not None and in_sync(s),
                              EACH_SYNC_DEADLINE, 0.2):
            return [f"volumes not in sync within {EACH_SYNC_DEADLINE:g} s: not compared"]
        log_path = host.path(f"/var/log/vigil/volume-{scene.RESOURCE}.log")
        seen = log_path.stat().st_size if log_path.exists() else 0
        started = time.monotonic()
        verify, problem = run_verify(host, 0.2)
        if verify is None:
            return [f"{problem}: not compared"]
        differ = int(verify.get("out_of_sync") or 0)
        took = time.monotonic() - started
        self.compared += 1
        if not differ:
            return [f"disks equal (verify of {verify.get('done_blocks')} blocks, {took:.1f} s)"]
        offsets = differing_offsets(log_path, seen)
        problem = (f"the two disks differ in {differ} blocks after this fault (verify on "
                   f"{holder}; offsets {', '.join(str(o) for o in offsets[:20])})")
        outcome.violations.append(problem)
        scene.volume(host, "disconnect", scene.RESOURCE, check=False)
        scene.volume(host, "connect", scene.RESOURCE, check=False)
        return [f"VIOLATION: {problem}; resynced them (disconnect, connect)"]

    def finish(self) -> None:
        """Stop the writes, then read the table through the VIP: what was kept?"""
        self.committer.stop.set()
        stopped = time.monotonic()
        if self.committer.ident is not None:
            self.committer.join(15)
        self._count_rows()
        self.volumes.stop()
        self._verify_disks(stopped)

    def stop(self) -> None:
        self.committer.stop.set()
        self.volumes.stop()
        super().stop()

    def end_notes(self) -> list[str]:
        notes = super().end_notes()
        if self.split_brains:
            self._unexplained_losses()
            victims = ", ".join(f"{b.victim}'s" for b in self.split_brains)
            notes.append(f"volume split brains: {len(self.split_brains)} (discarded: {victims} "
                         f"changes); acknowledged rows lost with them: {len(self.split_lost)}"
                         + (f" {self.split_lost[:10]}" if self.split_lost else "")
                         + " (a split without fencing: the configuration's known cost)")
        if self.verified is None:
            return notes
        compared, differ, synced, verified = self.verified
        return [*notes, f"the two disks after the resync (in sync {synced:.1f} s "
                f"after the writes stopped): vigil volume verify compared {compared} blocks "
                f"in {verified:.1f} s, {differ} differed"]

    def _verify_disks(self, writes_stopped: float) -> None:
        """The writes stopped: once both disks are connected and in sync, `vigil volume
        verify` on the Primary compares them block by block; a difference is a finding."""
        primary = self.holder()
        if primary is None:
            self.disk_findings.append("no node alone held the group at the end: the two "
                                      "disks were not compared")
            return
        host = self.lab.host(primary)
        synced = scene.wait_for(lambda: (s := volume_status(host)) is not None and in_sync(s),
                                SYNC_DEADLINE, 0.5)
        if not synced:
            last = volume_status(host) or {}
            self.disk_findings.append(
                f"the volumes were not connected and in sync {SYNC_DEADLINE:g} s after the "
                f"writes stopped ({primary}: {last.get('replication')}, disk "
                f"{last.get('disk')}/{last.get('peer_disk')}, out of sync "
                f"{last.get('out_of_sync')} bytes)")
            return
        synced_at = time.monotonic()
        verify, problem = run_verify(host, 0.5)
        if verify is None:
            self.disk_findings.append(f"{problem} (on {primary})")
            return
        differ = int(verify.get("out_of_sync") or 0)
        self.verified = (int(verify.get("done_blocks") or 0), differ,
                         synced_at - writes_stopped, time.monotonic() - synced_at)
        if differ:
            self.disk_findings.append(f"vigil volume verify: the two disks differ in {differ} "
                                      "blocks after the resync")

    def _count_rows(self) -> None:
        present: set[int] | None = None
        deadline = time.monotonic() + 30
        while present is None and time.monotonic() < deadline:
            with contextlib.suppress(pymysql.MySQLError):
                connection = scene.connect(self.lab.host("client"), self.pair.vip, 2.0)
                with connection, connection.cursor() as cursor:
                    cursor.execute("SELECT id FROM numbers")
                    present = {row[0] for row in cursor.fetchall()}
            if present is None:
                time.sleep(0.5)
        if present is None:
            self.result.problems.append("the table could not be read through the VIP")
            return
        self.rows = check_rows({n for n, _ in self.committer.acknowledged},
                               set(self.committer.attempted), present)

    def rows_lost(self) -> int | None:
        """Acknowledged rows lost outside any split brain's window (each a violation)."""
        if self.rows is None:
            return None
        return len(self._unexplained_losses())

    def _unexplained_losses(self) -> list[int]:
        if self.rows is None:
            return []
        acked_at = dict(self.committer.acknowledged)
        windows = [(b.began, b.recovered) for b in self.split_brains]
        self.split_lost, unexplained = split_losses(self.rows.lost, acked_at, windows)
        return unexplained

    def final_checks(self, injected: Sequence[Injected]) -> list[str]:
        found = self.arp_checks(injected)
        if self.rows is None:
            return [*found, "the table could not be read through the VIP at the end"]
        lost = self._unexplained_losses()
        if lost:
            found.append(f"{len(lost)} acknowledged rows lost: {lost[:10]}")
        if self.rows.phantom:
            found.append(f"rows never sent are in the table: {self.rows.phantom[:10]}")
        for start, end in unexcused_spans(dual_windows(self.volumes.samples), injected,
                                          self.timing):
            found.append(f"both volumes were Primary and took writes for {end - start:.2f} s "
                         "outside any split fault")
        return found + self.disk_findings
