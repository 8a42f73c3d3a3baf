"""Seeded mutation fuzzing of every decoder and parser vigil feeds with outside input.

Each entry point takes real inputs (the tutorial's own files, packets and
frames built by vigil's encoders), mutates them and feeds them in: the only
outcomes allowed are acceptance or the entry point's own refusal (a counted
rejection, a `ProtocolError`, a diagnostic with file and line). CI runs a
fixed budget of each (tests/unit/test_fuzz.py); `scripts/fuzz` runs longer.
"""

from __future__ import annotations

import base64
import contextlib
import random
import struct
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: values that have broken parsers before: empty, huge, negative, other spellings
NASTY = ["", "0", "-1", "1" * 400, "9" * 5000, "ffffffffffffffffffff", "N2", "n2", "zz",
         "1.5", "%%%", "\n", "{", "}", "[" * 200, "\udcc3", "\x00", "all", "none", '"']


def mutate_text(rng: random.Random, text: str) -> str:
    """Line- and character-level damage, as an editor slip or a hostile author makes it."""
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        index = rng.randrange(len(lines))
        if choice == 0:
            del lines[index]
            lines = lines or [""]
        elif choice == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif choice == 2:
            words = lines[index].split(" ")
            words[rng.randrange(len(words))] = rng.choice(NASTY)
            lines[index] = " ".join(words)
        elif choice == 3 and lines[index]:
            at = rng.randrange(len(lines[index]))
            lines[index] = lines[index][:at] + chr(rng.randrange(0x110000 if rng.random() < .1
                                                                  else 128)) + lines[index][at:]
        elif choice == 4:
            lines.insert(index, rng.choice(["{" * 50 + "\n", "}\n", "x {\n", "\t\t= =\n"]))
        elif choice == 5:
            lines[index] = lines[index][: rng.randrange(len(lines[index]) + 1)]
        else:
            lines.insert(index, rng.choice(NASTY) + " " + rng.choice(NASTY) + "\n")
    return "".join(lines)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    if out and rng.random() < 0.2:
        del out[rng.randrange(len(out)):]
    return bytes(out)


# -- entry points ---------------------------------------------------------------------------
def _seed(name: str) -> str:
    from vigil.lab.seed import original

    return original(name)


def _config_entry(name: str, analyze: Callable[[str, str], object],
                  original: str | None = None) -> Callable[[random.Random], None]:
    """Mutations of the seed's file `name` (or of `original`, for files the seed lacks)."""
    from vigil.lab.seed import adapt

    text = original if original is not None else adapt(_seed(name))

    def one(rng: random.Random) -> None:
        analyze(mutate_text(rng, text), name)  # returns diagnostics; must never raise
    return one


#: vigil.cf has no copy in the seed: every kind of line it holds
VIGIL_CF = """restart_limit 2
fence_command /usr/local/sbin/fence-peer %n
director_announce exabgp
announce_holddown 5
announce_linger 500ms
conntrackd_conf /etc/conntrackd/conntrackd.conf
lvs_sync_daemon eth1 id 9 maxlen 1472 ttl 1 group 224.0.0.81
garp_refresh 30
duplicate_probe on
agent mysqld
    monitor_interval 5
    on_monitor_failure failover
resource IPaddr::198.51.100.100/24/eth0
    monitor off
    failed_stop block
fence server6.example.com
    agent fence_ipmilan
    ip 203.0.113.16
    password s3cret
"""


def _config_entries() -> dict[str, Callable[[random.Random], None]]:
    from vigil.config import authkeys, drbd, extension, hacf, haresources, ldirectord
    from vigil.config.resolve import COMMON_SERVICES, StaticResolver

    names = StaticResolver(services=COMMON_SERVICES)
    return {
        "ha.cf": _config_entry("ha.cf", hacf.analyze),
        "authkeys": _config_entry("authkeys", authkeys.analyze),
        "haresources": _config_entry("haresources.drbd-mysql", haresources.analyze),
        "ldirectord.cf": _config_entry(
            "ldirectord.cf", lambda text, path: ldirectord.analyze(text, path, resolver=names)),
        "drbd": _config_entry("drbd-mysqldata.res", drbd.analyze),
        "vigil.cf": _config_entry("vigil.cf", extension.analyze, VIGIL_CF),
    }


#: what `vigil lvs -S` writes, every kind of option in it (the seed's file has few)
SAVED_RULES = """-A -t 198.51.100.100:80 -s wlc -p 600 -M 255.255.255.0
-a -t 198.51.100.100:80 -r 198.51.100.1:8080 -m -w 3 -x 100 -y 50
-a -t 198.51.100.100:80 -r 198.51.100.2:80 -g -w 1
-A -u [2001:db8::100]:53 -s sh -o -b sh-fallback,sh-port
-a -u [2001:db8::100]:53 -r [2001:db8::1]:53 -i -w 0
-A -f 7 -6 -s mh -p 300 -M 64
-E -t 198.51.100.100:80 -s rr
-e -t 198.51.100.100:80 -r 198.51.100.2:80 -g -w 5
-d -t 198.51.100.100:80 -r 198.51.100.2:80
-D -f 7 -6
-C
"""


def _rules_entry() -> Callable[[random.Random], None]:
    """`vigil lvs -R` input: the seed's ipvsadm lines and a saved table, damaged, as bytes
    through the decoding, the parser and the check against a table."""
    from vigil.lvs import rules
    from vigil.lvs.table import Table

    texts = [_seed("ipvsadm.sh"), SAVED_RULES]

    def ports(name: str, protocol: str) -> int | None:
        return {"http": 80, "domain": 53}.get(name)

    def one(rng: random.Random) -> None:
        text = mutate_text(rng, rng.choice(texts))
        data = text.encode("utf-8", "surrogatepass") if rng.random() < 0.7 else \
            mutate_bytes(rng, text.encode("utf-8", "replace"))
        try:
            rules.plan(rules.parse_rules(rules.decode(data), ports), Table())
        except rules.RuleError as exc:
            assert exc.line >= 0 and str(exc)
    return one


def _engine_for(state: dict[str, Any], config: Any, uuid: bytes) -> Any:
    """The engine a heartbeat entry point feeds: a fresh one every 500 inputs, so damage
    that piles up in one engine's state is found too, without one input's effect
    hiding the next's for the whole run."""
    from vigil.ha.engine import NodeEngine

    if state["node"] is None or state["fed"] % 500 == 0:
        state["node"] = NodeEngine(config, uuid=uuid.ljust(16, b"."), generation=7,
                                   now=state["now"], wall_offset=1.8e9)
        state["node"].start(state["now"])
    return state["node"]


def _heartbeat_entry() -> Callable[[random.Random], None]:
    """Packets a peer sends, signed with the key after their fields were damaged, or not."""
    from vigil.ha.engine import NodeConfig
    from vigil.ha.groups import groups_from_lines
    from vigil.membership.auth import AuthKeys, sign, verify
    from vigil.membership.codec import PacketCodec
    from vigil.membership.liveness import Timings
    from vigil.membership.messages import Envelope, Resources, Shutdone, Starting, Status
    from vigil.membership.wire import Field, Message

    keys = AuthKeys.from_pairs(1, {1: ("sha1", "secret")})
    codec = PacketCodec(keys)
    packets = []
    for seq, message in enumerate([Status(env=None, status="active"), Starting(env=None),
                                   Resources(env=None, rsc_hold="all", rtype="full",
                                             isstable="1"), Shutdone(env=None)], start=1):
        env = Envelope(src="n2", hg=0x6B09B566, ts=0x6B09BB4E, srcuuid=b"\xe4" * 16,
                       seq=seq if message.sequenced else None,
                       ld="0.1 0.1 0.1 1/100 1" if message.sequenced else None, ttl=3)
        packets.append(codec.pack(message.replace(env=env)))
    config = NodeConfig(me="n1", nodes=("n1", "n2"), links=("eth0",),
                        timings=Timings(keepalive=0.1, deadtime=0.5, initdead=1.0), keys=keys,
                        groups=groups_from_lines([("n1", ["IPaddr::198.51.100.100"])]),
                        auto_failback="on")
    state = {"node": None, "now": 0.0, "fed": 0}

    def one(rng: random.Random) -> None:
        node = _engine_for(state, config, b"n1")
        base = rng.choice(packets)
        if rng.random() < 0.5:
            datagram = mutate_bytes(rng, base)
        else:
            fields = list(verify(base, keys).message)
            for _ in range(rng.randint(1, 3)):
                index = rng.randrange(len(fields))
                fields[index] = Field.text(fields[index].name, rng.choice(NASTY))
            try:
                datagram = sign(Message(fields).without("auth"), keys)
            except UnicodeError:
                datagram = mutate_bytes(rng, base)
        state["now"] += 0.003
        state["fed"] += 1
        node.receive(datagram, "eth0", state["now"])
        node.tick(state["now"])
    return one


#: a compressed message Debian's heartbeat 3.0.6 sent in the lab (zlib, msgfmt classic, key
#: `1 sha1 vigil-lab-secret`): tests/unit/membership/data/hb306-zlib-classic.bin
CAPTURED_COMPRESSED = base64.b64decode(
    "IyMjCjI0MDooMSlfY29tcHJlc3NlZF9wYXlsb2FkPXic7dA9UsMwEIZh6j2FS2iMZP3ZM153gYaGCRewrF074JDE"
    "lkOOTxp61Ospdnbm696u6yCiP4yR1ggs8Jb9G7DMvRIAV7lXAmCVeyUA1rlXAmCTeyUAtrlXAmCXeyWAdRlwpeVK"
    "iynp1h/PM5XD6QiP8uk+bdsh4I4ns9+NH/vvV/f5dnLvX9f48oMIK11QwzSi9bKytXAQ17/fwhxQlropROnq+1Gq"
    "aJ5lrQotIMYZFfRbnFAWSgqhtR2q0FREVHvde3a6Ep4M+z4E1oK06aFtW3j4BSuFoucsMzA6KDApX2NvbXByZXNz"
    "aW9uX2FsZ29yaXRobT16bGliLCUlJQo0MjoxIGM2YWFiMGU4NDRhZjQ0ZGYxYzFlODA3MThkNDk0YmRlNmE5OTM3"
    "YjQs"
)


def _compressed_entry() -> Callable[[random.Random], None]:
    """Compressed packets of a peer with the key: damaged payloads, damaged originals inside
    (re-compressed), bombs and nesting, all signed so that they reach the decompressor."""
    from vigil.ha.engine import NodeConfig
    from vigil.membership import compression
    from vigil.membership.auth import AuthKeys, sign, verify
    from vigil.membership.liveness import Timings
    from vigil.membership.wire import Field, FieldType, Message

    keys = AuthKeys.from_pairs(1, {1: ("sha1", "vigil-lab-secret")})
    original, _ = compression.expand(verify(CAPTURED_COMPRESSED, keys).message)
    # as heartbeat packs it under msgfmt classic (auth field inside) and netstring (none)
    originals = [original.classic() + b"\0", original.without("auth").netstring_body()]
    config = NodeConfig(me="server6.example.com",
                        nodes=("server5.example.com", "server6.example.com"),
                        links=("eth0",), keys=keys,
                        timings=Timings(keepalive=0.1, deadtime=0.5, initdead=1.0))
    state = {"node": None, "now": 0.0, "fed": 0}

    def wrap(payload: bytes, algorithm: str) -> bytes:
        return sign(Message([Field(compression.PAYLOAD_FIELD, payload, FieldType.BINARY),
                             Field.text(compression.ALGORITHM_FIELD, algorithm)]), keys,
                    auth_field=False)

    def one(rng: random.Random) -> None:
        node = _engine_for(state, config, b"s6")
        algorithm = rng.choice(sorted(compression.ALGORITHMS))
        pack = compression.ALGORITHMS[algorithm].compress
        choice = rng.randrange(5)
        if choice == 0:
            datagram = rng.choice([CAPTURED_COMPRESSED, mutate_bytes(rng, CAPTURED_COMPRESSED)])
        elif choice == 1:
            datagram = wrap(mutate_bytes(rng, pack(rng.choice(originals))), algorithm)
        elif choice == 2:
            datagram = wrap(pack(mutate_bytes(rng, rng.choice(originals))), algorithm)
        elif choice == 3:
            datagram = wrap(pack(rng.choice([b"\0" * 3_000_000, b"x" * 262_144,
                                             b"x" * 262_145])), algorithm)
        else:
            nested = wrap(pack(rng.choice(originals)), algorithm)
            datagram = wrap(pack(nested[: nested.rindex(b"%%%\n") + 4]),
                            rng.choice([algorithm, "lzo", ""]))
        state["now"] += 0.003
        state["fed"] += 1
        node.receive(datagram, "eth0", state["now"])
        node.tick(state["now"])
    return one


def _replication_entry() -> Callable[[random.Random], None]:
    """Frames a peer sends, damaged, through the decoder, the field checks and the
    connected node's admission rules in a random state."""
    from vigil.replication import messages, wire
    from vigil.replication.admission import View, admit
    from vigil.replication.resize import Sizes, negotiate
    from vigil.replication.states import Repl, Role

    def agreed_size(peer: dict[str, object]) -> object:
        """The size handshake on checked fields, as `Node._agree_on_size` runs it."""
        size = int(peer["size"])  # type: ignore[call-overload]
        capacity = int(peer.get("capacity", size))  # type: ignore[call-overload]
        return negotiate(Sizes(1 << 26, 1 << 27), Sizes(size, capacity, bool(peer.get("grow"))))

    frames = [
        wire.Control(wire.T.HELLO, {"version": 1, "resource": "r0", "challenge": "00" * 32,
                                    "alg": "sha1"}).encode(),
        wire.Control(wire.T.PARAMS, {"generations": [1, 2, 3, 4], "crashed_primary": False,
                                     "primary": True, "dirty": 0, "size": 1 << 26,
                                     "capacity": 1 << 27, "grow": True,
                                     "protocol": "C"}).encode(),
        wire.Control(wire.T.STATE, {"role": "Primary", "disk": "UpToDate"}).encode(),
        wire.Control(wire.T.STATE, {"skip_initial_sync": 0x1234, "role": "Secondary",
                                    "disk": "UpToDate"}).encode(),
        wire.Control(wire.T.RS_DONE, {"generations": [1, 2, 3, 4]}).encode(),
        wire.bitmap_message(b"\0" * 256).encode(),
        wire.Data(wire.T.DATA, 1, 4096, b"x" * 64).encode(),
        wire.Verify(wire.T.OV_REQUEST, 0, 2, b"d" * 32).encode(),
        wire.Verify(wire.T.OV_REPLY, 4096, 9, b"\1\0").encode(),
        wire.Range(wire.T.RS_ACK, 8192, 4096).encode(),
        wire.Range(wire.T.OUT_OF_SYNC, 0, 1 << 20).encode(),
        wire.Data(wire.T.RS_DATA, 0, 8192, b"r" * 4096).encode(),
        wire.Ack(wire.T.FLUSH, 3).encode(),
        wire.Control(wire.T.OV_DONE, {"out_of_sync": 1}).encode(),
        wire.Control(wire.T.BYE, {"reason": "x"}).encode(),
        wire.ReadRequest(wire.T.READ_REQUEST, 5, 4096, 8192).encode(),
        wire.Data(wire.T.READ_REPLY, 5, 4096, b"d" * 8192).encode(),
        wire.Ack(wire.T.READ_ERROR, 5).encode(),
    ]
    checks: dict[object, Callable[[object], object]] = {
        wire.T.HELLO: lambda m: (messages.hello_resource(m.fields),  # type: ignore[attr-defined]
                                 messages.challenge(m.fields)),  # type: ignore[attr-defined]
        wire.T.PARAMS: lambda m: agreed_size(messages.params(m.fields)),  # type: ignore[attr-defined]
        wire.T.STATE: lambda m: (messages.state(m.fields),  # type: ignore[attr-defined]
                                 messages.skip_initial_sync(m.fields)),  # type: ignore[attr-defined]
        wire.T.RS_DONE: lambda m: messages.rs_done(m.fields),  # type: ignore[attr-defined]
        wire.T.BITMAP: lambda m: wire.bitmap_of(m, 256),  # type: ignore[arg-type]
    }

    def one(rng: random.Random) -> None:
        frame = bytearray(mutate_bytes(rng, rng.choice(frames)))
        if rng.random() < 0.2:
            body = rng.choice([b"[" * 5000, b'{"challenge":"zz","resource":"r0"}',
                               zlib.compress(b"\0" * 99999)])
            frame = bytearray(wire.HEADER.pack(wire.MAGIC, rng.randrange(28), 0, len(body))
                              + body)
        elif len(frame) >= wire.HEADER.size and rng.random() < 0.2:
            struct.pack_into("!I", frame, 4, rng.choice([0, 7, 2**31, 2**32 - 1]))
        view = View(size=rng.choice([0, 4096, 1 << 26]), role=rng.choice(list(Role)),
                    repl=rng.choice(list(Repl)), two_primaries=rng.random() < 0.2,
                    verify_outstanding=rng.randrange(3), resync_in_flight={2, 9},
                    peer_flushes=rng.randrange(70), serves_peer_reads=rng.random() < 0.5,
                    reads_outstanding={5, 6})
        try:
            for message in wire.Decoder().feed(bytes(frame)):
                check = checks.get(message.type)
                if check is not None:
                    check(message)
                admit(message, view)
        except wire.ProtocolError:
            pass
    return one


def _etcd_entry() -> Callable[[random.Random], None]:
    """The store's answers to the lease calls (etcd's JSON gateway), damaged."""
    from vigil.cluster import etcd

    name = base64.b64encode(b"server6.example.com").decode()
    answers = [
        ("/v3/lease/grant", b'{"header":{"revision":"7"},"ID":"7587867400331232781","TTL":"10"}',
         etcd.read_grant),
        ("/v3/lease/keepalive", b'{"result":{"ID":"7587867400331232781","TTL":"9"}}',
         etcd.read_keepalive),
        ("/v3/kv/txn", ('{"responses":[{"response_range":{"kvs":[{"key":"L3ZpZ2lsL2c=",'
                        f'"value":"{name}","create_revision":"4"}}],"count":"1"}}}}]}}')
         .encode(), lambda answer: etcd.read_acquired(answer, "server5.example.com")),
        ("/v3/kv/range", f'{{"kvs":[{{"key":"L3ZpZ2lsL2c=","value":"{name}"}}]}}'.encode(),
         etcd.read_holder),
        ("/v3/lease/keepalive", b'{"error":{"grpc_code":14,"message":"no leader"}}',
         etcd.read_keepalive),
        ("/v3/maintenance/status", b'{"header":{"cluster_id":"1","member_id":"937253817932",'
         b'"revision":"9","raft_term":"3"},"version":"3.4.23","dbSize":"20480",'
         b'"leader":"937253817932","raftIndex":"40","raftTerm":"3"}',
         etcd.read_member_status),
        ("/v3/kv/range", (b'{"kvs":[{"key":"L3ZpZ2lsL3JlYWNoL3NlcnZlcjU=","value":"Mg=="},'
                          b'{"key":"L3ZpZ2lsL3JlYWNoL3NlcnZlcjY=","value":"MQ=="}]}'),
         lambda answer: etcd.read_values(answer, "/vigil/reach/")),
    ]

    def one(rng: random.Random) -> None:
        path, body, read = rng.choice(answers)
        status = rng.choice([200, 200, 200, 404, 503])
        data = (mutate_text(rng, body.decode()).encode(errors="surrogatepass")
                if rng.random() < 0.5 else mutate_bytes(rng, body))
        with contextlib.suppress(etcd.EtcdError):
            read(etcd.read_answer(path, status, data))
    return one


def _sync_daemon_entry() -> Callable[[random.Random], None]:
    """The kernel's sync daemon attributes (ipvsadm -L --daemon) and the control
    request that starts one, damaged."""
    from vigil.lvs.syncdaemon import SyncDaemon, SyncDaemonError, SyncState, decode

    answer = bytes.fromhex("080001000200000007000200657468300800030009000000"
                           "06000400dc05000006000700902200000500080001000000"
                           "08000500e0000051")
    request = SyncDaemon(SyncState.MASTER, "eth0", 9, 1472, "239.1.2.3", 8848, 1).to_json()

    def one(rng: random.Random) -> None:
        with contextlib.suppress(ValueError):
            decode(mutate_bytes(rng, answer))
        damaged = dict(request)
        for _ in range(rng.randint(1, 3)):
            name = rng.choice([*damaged, "other"])
            damaged[name] = rng.choice([*NASTY, None, True, -1, 2**40, 3.5, [], {}])
        with contextlib.suppress(SyncDaemonError):
            SyncDaemon.from_json(damaged)
    return one


def _arp_entry() -> Callable[[random.Random], None]:
    """Frames from the segment (answers, announcements, probes) -> ARP decoder and the
    duplicate-address check."""
    from vigil.net import packets

    mac, vip = "02:76:6c:00:00:05", "198.51.100.100"
    seeds = [packets.arp_frame(packets.ARP_REPLY, mac, vip, "02:76:6c:00:00:0a",
                               "198.51.100.10", dst="02:76:6c:00:00:0a"),
             *packets.gratuitous_arp_pair(mac, vip), packets.arp_probe(mac, vip)]

    def one(rng: random.Random) -> None:
        packet = packets.parse_arp(mutate_bytes(rng, rng.choice(seeds)))
        if packet is not None:
            packets.arp_conflict(packet, vip, "02:76:6c:00:00:06")

    return one


def _ip_json_entry() -> Callable[[random.Random], None]:
    """`ip -j -batch` output -> the lab router's reader."""
    from vigil.lab.router import json_values

    seed = ('[{"dst":"198.51.100.100","gateway":"198.51.100.5","dev":"eth0"}]\n'
            '[{"gateway":"198.51.100.6"}]\n')

    def one(rng: random.Random) -> None:
        json_values(mutate_text(rng, seed))

    return one


def entry_points() -> dict[str, Callable[[random.Random], None]]:
    """Every fuzzed entry point, by name (add new decoders here)."""
    return {**_config_entries(), "heartbeat packet -> engine": _heartbeat_entry(),
            "heartbeat compressed packet -> engine": _compressed_entry(),
            "replication frame -> admission": _replication_entry(),
            "ipvsadm rules -> restore plan": _rules_entry(),
            "IPVS sync daemon attributes and requests": _sync_daemon_entry(),
            "etcd gateway answers -> lease calls": _etcd_entry(),
            "ARP frames -> decoder and duplicate check": _arp_entry(),
            "ip -j -batch output -> lab router reader": _ip_json_entry()}


@dataclass
class Outcome:
    name: str
    inputs: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def run(name: str, one: Callable[[random.Random], None], inputs: int, seed: int) -> Outcome:
    """Feed `inputs` mutated inputs; an exception is a failure (its traceback kept, max 5)."""
    rng = random.Random(f"{seed}:{name}")
    outcome = Outcome(name)
    for _ in range(inputs):
        outcome.inputs += 1
        try:
            one(rng)
        except Exception:
            outcome.failed += 1
            if len(outcome.failures) < 5:
                outcome.failures.append(traceback.format_exc(limit=6))
    return outcome
