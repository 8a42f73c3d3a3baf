"""Growing the seed's MariaDB volume online, as `drbdadm resize` does: no row lost.

server6's backing file grows while its volume is down (the metadata is found
again at the file's old end through the known size, and moved); server5's
grows while MariaDB commits rows on it. `vigil volume resize` on server5 grows
both nodes to the new size, the device follows, `xfs_growfs` grows the file
system online, the new space takes data, the new blocks resync, and every
acknowledged row is there with both disks equal.

XFS rather than the seed's ext4: ext4's online resize needs CAP_SYS_RESOURCE,
which the containers CI runs in may not grant (`resize2fs` then says
"Permission denied to resize filesystem"); growing XFS needs CAP_SYS_ADMIN,
which the lab needs anyway. vigil's part is the same for both.
"""

from __future__ import annotations

import pytest

from vigil.testing import wait_until
from vigil.testing.mariadb import (
    SEED_BACKING,
    Committer,
    connect,
    lost_rows,
    seed_resource,
    serve_app_database,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

MIB = 1 << 20


def _device_size(host) -> int:
    return int(host.run(["blockdev", "--getsize64", "/dev/drbd1"]).stdout)


def _fs_bytes(host, column: str) -> int:
    out = host.run(["df", "-B1", f"--output={column}", "/var/lib/mysql"]).stdout
    return int(out.split()[-1])


def test_volume_grows_online_under_mariadb_load(volume_pair):
    pair = volume_pair
    lab = pair.lab
    s5, s6, client = lab.host("server5"), lab.host("server6"), lab.host("client")
    pair.name, pair.backing = "mysqldata", SEED_BACKING
    # the new blocks resync while MariaDB writes: at c-min-rate, 250 KiB/s by default
    pair.start_pair(size="320M", text=seed_resource(
        "c-fill-target 16M; c-max-rate 400M; c-min-rate 64M;"))
    mariadb = serve_app_database(s5, mkfs="mkfs.xfs -q -f")
    old_size = pair.status("server5")["size"]
    assert _device_size(s5) == old_size

    # server6's disk grows while its volume is down; at up the metadata is found and moved
    pair.vigil("server6", "down", pair.name)
    s6.run(["truncate", "-s", "448M", pair.backing])
    pair.up("server6")
    pair.wait_synced()
    grown6 = pair.status("server6")
    assert grown6["size"] == old_size and grown6["capacity"] > old_size + 120 * MIB, grown6

    committer = Committer(client, s5.address())
    committer.start()
    wait_until(lambda: len(committer.committed) >= 200 or committer.error, 60,
               "200 commits on server5")
    free_before, fs_before = _fs_bytes(s5, "avail"), _fs_bytes(s5, "size")

    # server5's disk grows under load, then resize: both nodes take the smaller capacity
    s5.run(["truncate", "-s", "480M", pair.backing])
    said = pair.vigil("server5", "resize", pair.name).stdout
    capacity5 = pair.status("server5")["capacity"]
    new_size = min(capacity5, grown6["capacity"])
    assert f"to {new_size} bytes" in said, said
    for host in ("server5", "server6"):
        pair.wait_status(host, lambda s: s["size"] == new_size, 30, "the new size")
    wait_until(lambda: _device_size(s5) == new_size, 15,
               lambda: f"/dev/drbd1 on server5 to show {new_size} bytes "
               f"(shows {_device_size(s5)}):\n{pair.log_tail('server5')}")
    s5.run(["xfs_growfs", "/var/lib/mysql"], timeout=120)
    assert _fs_bytes(s5, "size") - fs_before > new_size - old_size - 8 * MIB
    # more than the old file system had free: only the new space can take it
    filler = free_before + 24 * MIB
    s5.run(["dd", "if=/dev/urandom", "of=/var/lib/mysql/filler", f"bs={MIB}",
            f"count={filler // MIB}", "conv=fsync", "status=none"], timeout=120)
    pair.wait_synced(timeout=120)
    marked = committer.committed[-1] if committer.committed else 0
    wait_until(lambda: len(committer.committed) >= marked + 200 or committer.error, 60,
               "200 more commits after the resize")
    committer.stop.set()
    committer.join(15)
    assert committer.error is None, committer.error
    seen = list(committer.committed)
    lost = lost_rows(connect(client, s5.address()), seen)
    assert not lost, f"{len(lost)} committed rows lost: {lost[:10]}"

    # both disks equal over the whole new size, the grown part included
    mariadb.stop(timeout=30)
    s5.run(["umount", "/var/lib/mysql"])
    pair.wait_synced(timeout=60)
    assert pair.data_digest("server5", new_size) == pair.data_digest("server6", new_size)
    print(f"\nresize: {old_size} -> {new_size} bytes under load, {len(seen)} committed rows "
          f"all present, {filler // MIB} MiB written into the new space")
