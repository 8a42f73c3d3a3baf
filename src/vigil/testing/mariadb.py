"""MariaDB on a lab host's replicated volume, and a client that counts acknowledged commits.

Shared by the lab tests that put the seed's database on `/dev/drbd1`: the
server's settings (durable commits), its start, and a committer whose list of
acknowledged rows is what "nothing lost" is checked against.
"""

from __future__ import annotations

import threading

import pymysql

from vigil.lab.host import Host, LabProcess
from vigil.lab.seed import lab_file
from vigil.testing import wait_until

#: Where the lab's hosts keep the seed volume's backing file.
SEED_BACKING = "/var/lib/vigil/mysqldata.img"
APP_SQL = ("CREATE DATABASE app; CREATE USER 'app'@'%' IDENTIFIED BY 'pw'; "
           "GRANT ALL ON app.* TO 'app'@'%'; CREATE TABLE app.numbers "
           "(id INT PRIMARY KEY, note VARCHAR(32)) ENGINE=InnoDB;")


def seed_resource(disk_options: str = "c-fill-target 16M; c-max-rate 400M;") -> str:
    """The seed's resource file as the lab hosts get it (addresses mapped), with the
    backing disk pointed at a file and the link timing made lab-fast."""
    return lab_file("drbd-mysqldata.res").replace("/dev/vdb", SEED_BACKING).replace(
        "protocol C;", "protocol C;\n  net { ping-int 1; connect-int 1; }\n"
        f"  disk {{ {disk_options} }}")


def serve_app_database(host: Host, mkfs: str = "mkfs.ext4 -q -F") -> LabProcess:
    """A file system on the host's /dev/drbd1 at /var/lib/mysql, MariaDB on it, and the
    app database the committer writes to."""
    host.run(f"{mkfs} /dev/drbd1 && mkdir -p /var/lib/mysql && "
             "mount /dev/drbd1 /var/lib/mysql && chown mysql:mysql /var/lib/mysql", timeout=60)
    install_database(host)
    process = start_mariadb(host)
    host.run(["mariadb", "-S", "/run/mysqld/mysqld.sock", "-e", APP_SQL])
    return process


def install_database(host: Host, datadir: str = "/var/lib/mysql", user: str = "mysql",
                     timeout: float = 180) -> None:
    """`mariadb-install-db`, its temporary files in the host's own /run.

    A lab host's /tmp is the machine's, and the bootstrap names its temporary tables
    after its PID inside the host: two hosts bootstrapping at once (labs side by side)
    removed each other's files ("Could not remove temporary table").
    """
    tmpdir = "/run/mariadb-install-db"
    host.run(["install", "-d", "-o", user, "-m", "0700", tmpdir])
    host.run(["mariadb-install-db", f"--user={user}", f"--datadir={datadir}",
              "--skip-test-db", "--auth-root-authentication-method=socket",
              f"--tmpdir={tmpdir}"], timeout=timeout)


MY_CNF = """\
[mysqld]
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
pid-file=/run/mysqld/mysqld.pid
tmpdir=/run/mysqld
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


def start_mariadb(host: Host) -> LabProcess:
    """mariadbd with durable commits on the host, once it answers on its socket."""
    host.write_file("/etc/vigil-test/my.cnf", MY_CNF)
    process = host.spawn(["mariadbd", "--defaults-file=/etc/vigil-test/my.cnf"], name="mariadbd")
    wait_until(lambda: host.run(["mariadb", "-S", "/run/mysqld/mysqld.sock", "-e", "select 1"],
                                check=False).returncode == 0, 60,
               lambda: f"MariaDB on {host.name} to answer: {process.output()[-500:]}"
               + _error_log(host))
    return process


def _error_log(host: Host) -> str:
    """The end of the server's error log, for a failure's message."""
    try:
        return host.read_file("/var/log/mysql-vigil.err")[-800:]
    except OSError:
        return ""


def connect(client: Host, address: str) -> pymysql.connections.Connection:
    """A connection from the client host's namespace, as the test's application user."""
    with client.entered():
        return pymysql.connect(host=address, user="app", password="pw", database="app",
                               connect_timeout=3, read_timeout=5, write_timeout=5,
                               autocommit=False)


def lost_rows(connection: pymysql.connections.Connection, committed: list[int]) -> list[int]:
    """The committed ids the table does not hold (closes the connection)."""
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM numbers")
        present = {row[0] for row in cursor.fetchall()}
    return sorted(set(committed) - present)


class Committer(threading.Thread):
    """Inserts rows 1, 2, 3, ... each in its own transaction; remembers acknowledged commits."""

    def __init__(self, client: Host, address: str):
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
