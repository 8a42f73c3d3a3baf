"""The seed's scenario end to end: MariaDB on /dev/drbd1, the primary crashes, nothing is lost.

server5 runs the volume as primary, ext4 on /dev/drbd1 mounted on /var/lib/mysql
(inside the host), MariaDB on top. A client on another host commits numbered
rows over TCP. server5 crashes (every process killed, links cut); server6
promotes, mounts (ext4 journal replay), starts MariaDB (InnoDB recovery), and
every row the client saw committed is there. Then server5 boots, returns as
secondary and resyncs.
"""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from vigil.lab.seed import lab_file
from vigil.testing import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.slow]

MY_CNF = """\
[mysqld]
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
pid-file=/run/mysqld/mysqld.pid
bind-address=0.0.0.0
port=3306
user=mysql
skip-name-resolve
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
innodb_flush_log_at_trx_commit=1
sync_binlog=1
log-error=/var/log/mysql-vigil.err
"""


def start_mariadb(host):
    host.write_file("/etc/vigil-test/my.cnf", MY_CNF)
    process = host.spawn(["mariadbd", "--defaults-file=/etc/vigil-test/my.cnf"], name="mariadbd")
    wait_until(lambda: host.run(["mariadb", "-S", "/run/mysqld/mysqld.sock", "-e", "select 1"],
                                check=False).returncode == 0, 60,
               lambda: f"MariaDB on {host.name} to answer: {process.output()[-500:]}"
               + _error_log(host))
    return process


def _error_log(host) -> str:
    try:
        return host.read_file("/var/log/mysql-vigil.err")[-800:]
    except OSError:
        return ""


def connect(client, address: str) -> pymysql.connections.Connection:
    with client.entered():
        return pymysql.connect(host=address, user="app", password="pw", database="app",
                               connect_timeout=3, read_timeout=5, write_timeout=5,
                               autocommit=False)


class Committer(threading.Thread):
    """Inserts rows 1, 2, 3, ... each in its own transaction; remembers acknowledged commits."""

    def __init__(self, client, address: str):
        super().__init__(daemon=True)
        self.connection = connect(client, address)
        self.committed: list[int] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with self.connection.cursor() as cursor:
                number = 0
                while not self.stop.is_set():
                    number += 1
                    cursor.execute("INSERT INTO numbers (id, note) VALUES (%s, %s)",
                                   (number, f"row {number}"))
                    self.connection.commit()
                    self.committed.append(number)
        except BaseException as exc:  # the crash ends it; that is the point
            self.error = exc


def test_mariadb_survives_primary_crash(volume_pair):
    pair = volume_pair
    lab = pair.lab
    s5, s6, client = lab.host("server5"), lab.host("server6"), lab.host("client")
    # The seed's resource file, as the lab hosts get it (addresses mapped), with the
    # backing disk pointed at a file and the link timing made lab-fast.
    pair.name, pair.backing = "mysqldata", "/var/lib/vigil/mysqldata.img"
    text = lab_file("drbd-mysqldata.res").replace("/dev/vdb", pair.backing).replace(
        "protocol C;", "protocol C;\n  net { ping-int 1; connect-int 1; }\n"
        "  disk { c-fill-target 16M; c-max-rate 400M; }")
    pair.start_pair(size="192M", text=text)
    s5.run("mkfs.ext4 -q -F /dev/drbd1 && mkdir -p /var/lib/mysql && "
           "mount /dev/drbd1 /var/lib/mysql && chown mysql:mysql /var/lib/mysql", timeout=60)
    s5.run(["mariadb-install-db", "--user=mysql", "--datadir=/var/lib/mysql",
            "--skip-test-db", "--auth-root-authentication-method=socket"], timeout=180)
    start_mariadb(s5)
    s5.run(["mariadb", "-S", "/run/mysqld/mysqld.sock", "-e",
            "CREATE DATABASE app; CREATE USER 'app'@'%' IDENTIFIED BY 'pw'; "
            "GRANT ALL ON app.* TO 'app'@'%'; CREATE TABLE app.numbers "
            "(id INT PRIMARY KEY, note VARCHAR(32)) ENGINE=InnoDB;"])

    committer = Committer(client, s5.address())
    committer.start()
    wait_until(lambda: len(committer.committed) >= 300 or committer.error, 60,
               "300 commits on server5")
    assert committer.error is None, committer.error
    crashed_at = time.monotonic()
    lab.crash("server5")
    phases = {"server5 down": time.monotonic()}

    pair.wait_status("server6", lambda s: s["connection"] != "Connected", 15, "peer loss")
    phases["peer loss noticed"] = time.monotonic()
    pair.vigil("server6", "primary", pair.name)
    phases["promoted"] = time.monotonic()
    s6.run("mkdir -p /var/lib/mysql && mount /dev/drbd1 /var/lib/mysql", timeout=60)
    phases["mounted (journal replayed)"] = time.monotonic()
    mariadb6 = start_mariadb(s6)
    survivor = connect(client, s6.address())
    phases["MariaDB answering the client"] = time.monotonic()
    failover = time.monotonic() - crashed_at
    committer.join(30)  # its last statement times out against the dead server5
    assert not committer.is_alive()
    seen = list(committer.committed)
    assert committer.error is not None  # the client noticed the crash
    with survivor.cursor() as cursor:
        cursor.execute("SELECT id FROM numbers")
        present = {row[0] for row in cursor.fetchall()}
    survivor.close()
    lost = sorted(set(seen) - present)
    assert not lost, f"{len(lost)} committed rows lost: {lost[:10]}"
    steps = ", ".join(f"{name} +{when - crashed_at:.2f} s" for name, when in phases.items())
    print(f"\nfailover: {len(seen)} committed rows all present; crash -> MariaDB answering "
          f"on server6 in {failover:.2f} s ({steps})")

    # server5 comes back as secondary and resyncs from server6.
    lab.boot("server5")
    pair.up("server5")
    status = pair.wait_status("server5", lambda s: s["connection"] == "Connected", 30,
                              "server5 to reconnect")
    assert status["role"] == "Secondary"
    mariadb6.stop(timeout=30)
    s6.run(["umount", "/var/lib/mysql"])
    pair.wait_synced(timeout=60)
    size = pair.status("server6")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
    moved = pair.status("server5")["last_sync"]["blocks"]
    assert 0 < moved < size // 4096 // 2, f"resync moved {moved} blocks: not a partial resync"
