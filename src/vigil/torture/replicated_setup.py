"""The replicated setup under faults: the demo's MariaDB on a `vigil volume`, written to.

Built by the demo's own replication scene (`configure`, `prepare_volume`,
`Committer`); a reading client (the heartbeat scene's) tells who serves, the
committer's acknowledged ids are checked against the table at the end.
"""

from __future__ import annotations

import contextlib
import time

import pymysql

from vigil.demo import replication_scene as scene
from vigil.demo.heartbeat_scene import VIGIL_CF_TEXT
from vigil.lab import Lab
from vigil.torture.checks import Rows, check_rows
from vigil.torture.heartbeat_setup import HeartbeatSetup, SetupFailed, campaign_ha_cf
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
#: how long a booting node's volumes unit waits for its peer (wfc-timeout)
WFC_TIMEOUT = 15


class ReplicatedSetup(HeartbeatSetup):
    """haresources.drbd-mysql: VIP, drbddisk::mysqldata, Filesystem on /dev/drbd1, mysqld."""

    name = "replicated"

    def __init__(self, lab: Lab):
        super().__init__(lab)
        self.replication = scene.ReplicationResult("torture replicated")
        self.result = self.pair.result = self.replication
        self.committer = scene.Committer(lab.host("client"), self.pair.vip)
        self.rows: Rows | None = None

    def configure(self) -> None:
        timeline = self.pair.timeline
        if not scene.configure(self.lab, timeline, self.replication,
                               ha_cf=campaign_ha_cf()):
            raise SetupFailed("; ".join(self.result.problems))
        for node in ("server5", "server6"):
            self.lab.host(node).write_file("/etc/ha.d/vigil.cf", VIGIL_CF_TEXT)
        if not scene.prepare_volume(self.lab, timeline, self.replication):
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

    def after_boot(self, node: str) -> None:
        """The volumes unit (`vigil volume up`, `wait-connect`), then vigil heartbeat."""
        host = self.lab.host(node)
        scene.volume(host, "up", scene.RESOURCE, check=False)
        scene.volume(host, "wait-connect", "--wfc-timeout", str(WFC_TIMEOUT),
                     "--degr-wfc-timeout", str(WFC_TIMEOUT), "--outdated-wfc-timeout",
                     str(WFC_TIMEOUT), scene.RESOURCE, check=False)
        self._start_daemon(node)

    def other_fault(self, fault: Fault, target: str) -> None:
        if fault.kind is not FaultKind.CUT_REPLICATION:
            super().other_fault(fault, target)
        host = self.lab.host(target)
        port = REPLICATION_PORT
        host.run(["nft", "-f", "-"], input=(
            f"table inet {CUT_TABLE} {{\n"
            f"  chain in {{ type filter hook input priority 0; tcp dport {port} drop; "
            f"tcp sport {port} drop; }}\n"
            f"  chain out {{ type filter hook output priority 0; tcp dport {port} drop; "
            f"tcp sport {port} drop; }}\n}}\n"))
        time.sleep(fault.hold)
        host.run(["nft", "delete", "table", "inet", CUT_TABLE])

    def finish(self) -> None:
        """Stop the writes, then read the table through the VIP: what was kept?"""
        self.committer.stop.set()
        if self.committer.ident is not None:
            self.committer.join(15)
        self._count_rows()

    def stop(self) -> None:
        self.committer.stop.set()
        super().stop()

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
        return None if self.rows is None else len(self.rows.lost)

    def final_checks(self) -> list[str]:
        if self.rows is None:
            return ["the table could not be read through the VIP at the end"]
        found = []
        if self.rows.lost:
            found.append(f"{len(self.rows.lost)} acknowledged rows lost: {self.rows.lost[:10]}")
        if self.rows.phantom:
            found.append(f"rows never sent are in the table: {self.rows.phantom[:10]}")
        return found
