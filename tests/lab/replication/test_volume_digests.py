"""csums-alg and data-integrity-alg between two real volume daemons.

csums-alg: a full resync (invalidate) of a target that already holds the data
sends the digests and only the blocks that differ. data-integrity-alg: a link
that corrupts a replicated write behind TCP's checksum (nftables rewrites bytes
of the stream on the primary's way out) is caught by the receiver, which drops
the connection; the resync after the reconnect repairs the block. Without it the
corruption lands on the secondary's disk, which the negative case shows.
"""

from __future__ import annotations

import pytest

from vigil.replication.node import RESYNC_CHUNK_BLOCKS
from vigil.testing import wait_until

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("csums", [True, False])
def test_a_full_resync_with_csums_sends_only_the_blocks_that_differ(volume_pair, csums):
    pair = volume_pair
    pair.start_pair(size="16M", net="    csums-alg sha1;" if csums else "")
    pair.write_blocks("server5", [3, 4, 5], b"same")
    size = pair.status("server5")["size"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
    # Two blocks of the secondary changed behind vigil's back; then the secondary
    # throws its data away: a full resync from server5 follows.
    with open(pair.host("server6").path(pair.backing), "r+b") as backing:
        for block in (10, 200):
            backing.seek(block * 4096 + 17)
            backing.write(b"CHANGED BEHIND VIGIL")
    before = pair.status("server5")["stats"]
    pair.vigil("server6", "invalidate", pair.name)
    pair.wait_synced()
    after = pair.status("server5")["stats"]
    assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
    same = after["resync_same_blocks"] - before["resync_same_blocks"]
    sent = after["resync_messages"] - before["resync_messages"]
    blocks = size // 4096  # the data area: the backing file less the internal metadata
    assert pair.status("server6")["last_sync"]["blocks"] == blocks
    if csums:
        assert same == blocks - 2  # every block but the two that differ
        # a digest request per message's worth of blocks, then one data message for each
        # changed block
        assert sent == -(-blocks // RESYNC_CHUNK_BLOCKS) + 2
    else:  # every block, a message's worth at a time
        assert same == 0 and sent >= -(-blocks // RESYNC_CHUNK_BLOCKS)


def test_different_digest_settings_keep_the_nodes_apart_and_say_why(volume_pair):
    pair = volume_pair
    for host, net in (("server5", "    data-integrity-alg sha256;"), ("server6", "")):
        pair.configure(host, net=net)
        pair.create(host, "16M")
        pair.up(host)
    status = pair.wait_status("server6", lambda s: s["connection"] == "StandAlone"
                              and "data-integrity-alg" in (s.get("reason") or ""), 30,
                              "StandAlone with the reason")
    assert "different data-integrity-alg settings" in status["reason"]
    assert "'sha256'" in status["reason"] and "(none)" in status["reason"]


#: server5's replication traffic: 500 bytes into each large TCP segment it sends,
#: four bytes are rewritten after TCP's checksum is done (a corrupting link).
CORRUPT = """table inet corrupt {
  chain out {
    type filter hook output priority 0;
    tcp dport 7789 meta length > 30000 @th,4000,32 set 0xdeadbeef counter
  }
}
"""


@pytest.mark.parametrize("integrity", [True, False])
def test_a_link_that_corrupts_a_write_is_caught_by_data_integrity_alg(volume_pair, integrity):
    pair = volume_pair
    pair.start_pair(size="16M", net="    data-integrity-alg crc32c;" if integrity else "")
    server5 = pair.host("server5")
    server5.run(["nft", "-f", "-"], input=CORRUPT)
    try:
        server5.run("dd if=/dev/urandom of=/dev/drbd1 bs=1M count=4 oflag=direct "
                    "status=none", timeout=60)
    finally:
        server5.run(["nft", "delete", "table", "inet", "corrupt"])
    size = pair.status("server5")["size"]
    if integrity:
        # the secondary refused the corrupted write and dropped the link; server5 kept
        # the write marked out of sync and resyncs it once connected again
        wait_until(lambda: pair.status("server6")["stats"]["integrity_failures"] >= 1, 30,
                   "server6 counts a data-integrity failure")
        pair.wait_status("server5", lambda s: s["connection"] == "Connected"
                         and s["replication"] == "Established", 60, "connected and in sync")
        pair.wait_synced()
        assert pair.data_digest("server5", size) == pair.data_digest("server6", size)
        assert "volume.integrity_failed" in pair.log_tail("server6", 400)
    else:
        # nothing notices: the secondary's disk holds what the link made of the data
        assert pair.status("server6")["stats"]["integrity_failures"] == 0
        assert pair.data_digest("server5", size) != pair.data_digest("server6", size)
