"""Fuzz: mutated heartbeat packets, signed and unsigned, into a running engine (fixed budget).

A peer with the key that sends nonsense (a bug, a version skew) and a stranger
that flips bytes must both end in a counted rejection or an accepted packet:
never an exception out of `receive`, never a `tick` that fails afterwards.
"""

from __future__ import annotations

import random

from vigil.ha.engine import NodeConfig, NodeEngine
from vigil.ha.groups import groups_from_lines
from vigil.membership.auth import AuthKeys, sign, verify
from vigil.membership.codec import PacketCodec
from vigil.membership.liveness import Timings
from vigil.membership.messages import (
    AskResources,
    Envelope,
    HbTakeover,
    ReqNodes,
    Resources,
    Rexmit,
    Shutdone,
    Starting,
    Status,
)
from vigil.membership.wire import Field, Message

KEYS = AuthKeys.from_pairs(1, {1: ("sha1", "secret")})
GROUPS = groups_from_lines([("n1", ["IPaddr::198.51.100.100"]), ("n2", ["nginx"])])
VALUES = ["", "0", "-1", "1" * 400, "ffffffffffffffffffff", "N2", "n2", "n1", "zz", "1.5",
          "all", "local", "foreign", "none", "%%%", "\n", "(1)x", "active", "dead", "up"]


def engine() -> NodeEngine:
    config = NodeConfig(me="n1", nodes=("n1", "n2"), links=("eth0",),
                        timings=Timings(keepalive=0.1, deadtime=0.5, initdead=1.0), keys=KEYS,
                        groups=GROUPS, auto_failback="on")
    return NodeEngine(config, uuid=b"n1".ljust(16, b"."), generation=7, now=0.0,
                      wall_offset=1.8e9)


def real_packets() -> list[bytes]:
    """What a peer sends: heartbeat's message types, signed with the cluster's key."""
    codec = PacketCodec(KEYS)
    packets = []
    for seq, message in enumerate([
            Status(env=None, status="active"), Starting(env=None), ReqNodes(env=None),
            Resources(env=None, rsc_hold="all", rtype="full", isstable="1"),
            AskResources(env=None, rsc_hold="all", info="me"), HbTakeover(env=None),
            Rexmit(env=None, firstseq=1, lastseq=3), Shutdone(env=None)], start=1):
        env = Envelope(src="n2", hg=0x6B09B566, ts=0x6B09BB4E, srcuuid=b"\xe4" * 16,
                       seq=seq if message.sequenced else None,
                       ld="0.1 0.1 0.1 1/100 1" if message.sequenced else None, ttl=3)
        try:
            packets.append(codec.pack(message.replace(env=env)))
        except Exception:  # a type whose body this builder does not fill: skip it
            continue
    return packets


def mutate_fields(rng: random.Random, packet: bytes) -> bytes:
    fields = list(verify(packet, KEYS).message)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(4)
        if choice == 0 and fields:
            index = rng.randrange(len(fields))
            fields[index] = Field.text(fields[index].name, rng.choice(VALUES))
        elif choice == 1 and fields:
            del fields[rng.randrange(len(fields))]
        elif choice == 2 and fields:
            fields.append(rng.choice(fields))
        else:
            fields.append(Field.text(rng.choice(["hg", "seq", "src", "t", "dt", "rsc_hold",
                                                 "firstseq", "lastseq", "ackseq", "vg_groups"]),
                                     rng.choice(VALUES)))
    return sign(Message(fields).without("auth"), KEYS)


def mutate_bytes(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.2:
        del data[rng.randrange(len(data)):]
    return bytes(data)


def test_fuzz_mutated_heartbeats_never_raise_from_the_engine():
    rng = random.Random(20261204)
    packets = real_packets()
    assert len(packets) >= 5
    node = engine()
    node.start(0.0)
    now, fed = 0.0, 0
    for round_ in range(3000):
        base = rng.choice(packets)
        try:
            datagram = mutate_fields(rng, base) if round_ % 2 else mutate_bytes(rng, base)
        except Exception:
            datagram = mutate_bytes(rng, base)  # a field the builder cannot sign: bytes only
        now += 0.003
        node.receive(datagram, "eth0", now)
        fed += 1
        if round_ % 10 == 0:
            node.tick(now)
    node.tick(now + 1)
    status = node.status(now + 1)
    rejected = sum(status["rejected"].values())
    assert fed == 3000 and rejected > 0
