"""Debian's heartbeat 3.0.6 compressing its messages, vigil as its peer.

heartbeat compresses whole messages only with `traditional_compression on`,
and only those longer than `compression_threshold` (here 1 KB, the least it
takes). In a haresources pair none of its own messages comes near that (a
status is about 320 bytes): the pair starts and settles its group with
nothing compressed. What does get compressed is a big message a script
writes into heartbeat's FIFO (as `ha_clustermsg` does for resource scripts),
which heartbeat sends to the cluster: vigil must open it, and go on as before.
"""

from __future__ import annotations

import pytest

from vigil.testing import wait_until

pytestmark = pytest.mark.lab

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
PEER = "server6"  # vigil; heartbeat runs on server5, the group's home
#: 8 fields of 300 bytes: about 2.6 KB, over the 1 KB threshold (heartbeat's FIFO reader
#: takes lines of at most 512 bytes)
BIG = ">>>\nt=lab-report\n" + "".join(f"f{i}={'x' * 300}\n" for i in range(8)) + "<<<\n"


@pytest.mark.parametrize("algorithm", ["zlib", "bz2"])
def test_vigil_reads_what_a_compressing_heartbeat_sends_and_still_fails_over(hb, algorithm):
    hb.extra = (f"compression {algorithm}\ncompression_threshold 1\n"
                "traditional_compression on\n")
    for name in ("server5", PEER):
        hb.configure(name)
        hb.broadcast_addresses(name)
        hb.responder(name)
    server5 = hb.lab.host("server5")
    server5.write_file("/etc/ha.d/ha.cf", "logfile /var/log/ha-log\n" + hb.hacf())

    def ha_log() -> str:
        return server5.run("tail -60 /var/log/ha-log", check=False).stdout

    def counters() -> dict:
        return hb.status(PEER)["counters"]

    hb.daemons["heartbeat"] = server5.spawn([HEARTBEAT], name="heartbeat",
                                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    hb.start(PEER, configure=False)
    wait_until(lambda: hb.holders() == {"server5"} and hb.client_answer() == "server5", 40,
               lambda: f"the VIP on its home server5\n{ha_log()}\n" + hb.logs())
    wait_until(lambda: hb.peer(PEER)["status"] == "active", 10, "vigil seeing heartbeat")
    assert "Traditional compression selected" in ha_log()
    # starting, negotiating the group, heartbeating: nothing reached the threshold
    assert counters()["compressed"] == 0

    server5.run(["sh", "-c", 'printf "%s" "$1" > /var/lib/heartbeat/fifo', "sh", BIG])
    wait_until(lambda: counters()["compressed"] >= 1, 10,
               lambda: f"vigil decoding heartbeat's compressed message ({counters()})\n"
               f"{ha_log()}\n" + hb.logs())
    rejected = hb.status(PEER)["rejected"]
    assert rejected["malformed"] == 0 and rejected["bad_compression"] == 0, rejected
    assert rejected["bad_auth"] == 0, rejected

    # the pair is as it was, and the group still moves when heartbeat stops
    assert hb.holders() == {"server5"} and hb.peer(PEER)["status"] == "active"
    server5.run([HEARTBEAT, "-k"])  # heartbeat stops: it lets the group go, vigil takes it
    wait_until(lambda: hb.holders() == {PEER}, 40,
               lambda: f"the VIP on {PEER} alone (now {hb.holders()})\n{ha_log()}\n"
               + hb.logs())
    hb.wait_client(PEER)
    rejected = hb.status(PEER)["rejected"]
    assert rejected["malformed"] == 0 and rejected["bad_compression"] == 0, rejected
