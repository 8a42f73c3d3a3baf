"""Debian's heartbeat 3.0.6 compressing its messages, vigil as its peer.

heartbeat compresses whole messages only with `traditional_compression on`,
and only those longer than `compression_threshold` (here 1 KB, the least it
takes). In a haresources pair none of its own messages comes near that (a
status is about 320 bytes): the pair starts and settles its group with
nothing compressed. What does get compressed is a big message a script
writes into heartbeat's FIFO (as `ha_clustermsg` does for resource scripts),
which heartbeat sends to the cluster: vigil must open it, and go on as before.
The other way round, heartbeat must understand what vigil compresses.
"""

from __future__ import annotations

import itertools
import time

import pytest

from vigil.membership.auth import AuthKeys
from vigil.membership.codec import Compressor, PacketCodec
from vigil.membership.compression import is_compressed
from vigil.membership.messages import Envelope, Status
from vigil.membership.wire import decode_netstring
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
KEY = "vigil-lab-secret"  # the hb fixture's authkeys
PEER = "server6"  # vigil; heartbeat runs on server5, the group's home
#: 8 fields of 300 bytes: about 2.6 KB, over the 1 KB threshold (heartbeat's FIFO reader
#: takes lines of at most 512 bytes)
BIG = ">>>\nt=lab-report\n" + "".join(f"f{i}={'x' * 300}\n" for i in range(8)) + "<<<\n"


@pytest.mark.parametrize("algorithm", ["zlib", "bz2"])
def test_vigil_reads_a_compressing_heartbeat_and_takes_the_group_when_it_stops(hb, algorithm):
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


@pytest.mark.parametrize("algorithm", ["zlib", "bz2"])
def test_heartbeat_reads_what_vigil_compresses(hb, algorithm):
    """vigil's messages never reach a threshold of 1 KB; packed with a threshold of 0, its
    heartbeats in server6's name make heartbeat see that node come alive."""
    hb.haresources = ""  # membership only
    hb.extra = f"compression {algorithm}\ntraditional_compression on\n"
    hb.configure("server5")
    hb.broadcast_addresses("server5")
    server5 = hb.lab.host("server5")
    server5.write_file("/etc/ha.d/ha.cf", "logfile /var/log/ha-log\n" + hb.hacf())
    hb.daemons["heartbeat"] = server5.spawn([HEARTBEAT], name="heartbeat",
                                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def node_status() -> str:
        done = server5.run(["cl_status", "nodestatus", "server6.example.com"], check=False)
        return done.stdout.strip()

    wait_until(lambda: node_status() == "dead", 30,
               lambda: "heartbeat up, server6 not heard\n" + server5.run(
                   "tail -30 /var/log/ha-log", check=False).stdout)
    codec = PacketCodec(AuthKeys.from_pairs(1, {1: ("sha1", KEY)}), Compressor(algorithm, 0))
    generation, numbers = int(time.time()), itertools.count(1)

    def heartbeat_from_server6() -> bytes:
        env = Envelope(src="server6.example.com", hg=generation, ts=int(time.time()),
                       seq=next(numbers), ld="0.00 0.00 0.00 1/100 1", ttl=3)
        return codec.pack(Status(env=env, status="active", deadtime_ms=1000, protocol=1))

    sample = heartbeat_from_server6()
    assert is_compressed(decode_netstring(sample).message)
    hb.inject("client", [sample], hb.lab.host("server5").address())

    def alive() -> bool:
        hb.inject("client", [heartbeat_from_server6()], hb.lab.host("server5").address())
        return node_status() == "active"

    wait_until(alive, 15, lambda: f"heartbeat seeing server6 active ({node_status()})\n"
               + server5.run("tail -30 /var/log/ha-log", check=False).stdout)
