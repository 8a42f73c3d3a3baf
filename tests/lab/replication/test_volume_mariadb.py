"""The seed's scenario end to end: MariaDB on /dev/drbd1, the primary crashes, nothing is lost.

server5 runs the volume as primary, ext4 on /dev/drbd1 mounted on /var/lib/mysql
(inside the host), MariaDB on top. A client on another host commits numbered
rows over TCP. server5 crashes (every process killed, links cut); server6
promotes, mounts (ext4 journal replay), starts MariaDB (InnoDB recovery), and
every row the client saw committed is there. Then server5 boots, returns as
secondary and resyncs.
"""

from __future__ import annotations

import time

import pytest

from vigil.testing import wait_until
from vigil.testing.mariadb import (
    SEED_BACKING,
    Committer,
    connect,
    lost_rows,
    seed_resource,
    serve_app_database,
    start_mariadb,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_mariadb_survives_primary_crash(volume_pair):
    pair = volume_pair
    lab = pair.lab
    s5, s6, client = lab.host("server5"), lab.host("server6"), lab.host("client")
    pair.name, pair.backing = "mysqldata", SEED_BACKING
    pair.start_pair(size="192M", text=seed_resource())
    serve_app_database(s5)

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
    lost = lost_rows(survivor, seen)
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
