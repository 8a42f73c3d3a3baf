"""A rogue host on the pair's segments attacks a running heartbeat pair and replicated volume.

server5 holds the VIP (heartbeat, sha1) and is Primary of r0 (protocol C, a
shared secret); server6 is its peer on both. The client, on the same lan,
sends every class of hostile input it can: forged, replayed, case-altered,
crc-signed and mutated heartbeats; connections to the replication port from
a stranger's address; then, holding the peer's own address while the peer's
lan link is down, a replication peer that speaks garbage (non-hex challenges,
deep JSON, huge lengths, too many connections, unauthenticated data). After
each wave the group is on server5 alone, both daemons of both nodes run, not
one byte of either disk changed, and the pair comes back together unharmed.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.lab import LabProcess
from vigil.membership.auth import AuthKeys, sign, verify
from vigil.membership.wire import Field
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

VIGIL = str(Path(sys.executable).parent / "vigil")
VIP = "198.51.100.100"
KEY = "rogue-lab-secret"
NODES = ("server5", "server6")
PEER_OF = {"server5": "server6.example.com", "server6": "server5.example.com"}
HACF = """keepalive 100ms
deadtime 1
warntime 500ms
initdead 3
udpport 694
bcast eth0
ucast eth1 203.0.113.5
ucast eth1 203.0.113.6
auto_failback on
node server5.example.com
node server6.example.com
"""
#: the replication header: magic "VG", type, flags, body length (big endian)
HEADER = struct.Struct("!HBBI")
MAGIC = 0x5647
HELLO, AUTH, PARAMS, STATE, DATA, RS_DONE = 1, 2, 3, 4, 6, 14


def frame(kind: int, body: bytes, length: int | None = None) -> bytes:
    return HEADER.pack(MAGIC, kind, 0, len(body) if length is None else length) + body


def start_heartbeat(pair, name: str) -> LabProcess:
    host = pair.host(name)
    host.write_file("/etc/ha.d/ha.cf", HACF)
    host.write_file("/etc/ha.d/authkeys", f"auth 1\n1 sha1 {KEY}\n", mode=0o600)
    host.write_file("/etc/ha.d/haresources", f"server5.example.com IPaddr::{VIP}/24/eth0\n")
    host.write_file("/etc/ha.d/vigil.cf", "duplicate_probe off\n")
    process = host.spawn([VIGIL, "heartbeat", "-f"], name="vigil")
    wait_until(lambda: "heartbeat.ready" in process.output() or not process.alive(), 20,
               f"vigil heartbeat ready on {name}")
    assert process.alive(), process.output()
    return process


def holders(pair) -> set[str]:
    return {name for name in NODES if pair.lab.carries(name, VIP)}


def heartbeat_peer(pair, name: str) -> dict:
    import json
    status = json.loads(pair.host(name).run([VIGIL, "status", "--json"], timeout=20).stdout)
    return next(n for n in status["nodes"] if n["name"] == PEER_OF[name])


def capture(pair, count: int) -> list[bytes]:
    """Heartbeats as the rogue on the lan receives them (both nodes broadcast)."""
    with pair.host("client").entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", 694))
        sock.settimeout(10)
        return [sock.recv(65535) for _ in range(count)]
    finally:
        sock.close()


def inject(pair, datagrams: list[bytes]) -> None:
    with pair.host("client").entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for address in ("198.51.100.255", "198.51.100.5", "198.51.100.6"):
            for datagram in datagrams:
                with contextlib.suppress(OSError):
                    sock.sendto(datagram, (address, 694))
    finally:
        sock.close()


def hostile_heartbeats(captured: list[bytes], seed: int) -> list[bytes]:
    """Every heartbeat attack class a host without the key can mount."""
    rng = random.Random(seed)
    real = AuthKeys.from_pairs(1, {1: ("sha1", KEY)})
    crc = AuthKeys.from_pairs(1, {1: ("crc", "")})
    out = list(captured)  # plain replays
    for datagram in captured[:6]:
        message = verify(datagram, real).message
        src = message.get("src") or "server5.example.com"
        variants = [
            message.with_field(Field.text("src", src.upper())),          # case-altered name
            message.with_field(Field.text("hg", str(2**31 - 1))),          # huge generation
            message.with_field(Field.text("t", "shutdone")),               # forged goodbye
            message.with_field(Field.text("st", "dead")),
        ]
        out += [sign(v, crc) for v in variants]                            # crc downgrade
        out += [sign(v, real)[:-8] + b"deadbeef" for v in variants]       # broken signatures
    for _ in range(300):                                                   # mutations
        data = bytearray(rng.choice(captured))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        out.append(bytes(data))
    out += [b"", b"###\n", b"###\n" + b"a" * 60000, bytes(range(256)) * 4]
    return out


@contextlib.contextmanager
def rogue_socket(pair, address: str, port: int) -> Iterator[socket.socket]:
    with pair.host("client").entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(3)
    try:
        sock.connect((address, port))
        yield sock
    finally:
        sock.close()


def send_quietly(pair, address: str, payload: bytes) -> None:
    """Connect to a replication port and send `payload`; a refusal or reset is an answer."""
    with contextlib.suppress(OSError), rogue_socket(pair, address, 7789) as sock:
        sock.sendall(payload)
        with contextlib.suppress(OSError):
            sock.recv(4096)


def impersonate_peer(pair, payloads: list[bytes], deadline: float = 60) -> int:
    """Listen on the peer's address; answer each of the Primary's attempts with one payload."""
    with pair.host("client").entered():
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    answered = 0
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("198.51.100.6", 7789))
        server.listen(8)
        end = time.monotonic() + deadline
        for payload in payloads:
            server.settimeout(max(0.1, end - time.monotonic()))
            connection, _ = server.accept()  # the Primary retries every connect-int
            with connection:
                connection.settimeout(3)
                with contextlib.suppress(OSError):
                    connection.recv(65536)  # its HELLO
                    connection.sendall(payload)
                    connection.recv(65536)  # its verdict: a close
            answered += 1
    finally:
        server.close()
    return answered


def hostile_replication() -> list[bytes]:
    deep = b"[" * 100000 + b"]" * 100000
    return [
        frame(HELLO, b'{"alg":"sha1","challenge":"not hex!","resource":"r0","version":1}'),
        frame(HELLO, b'{"alg":"sha1","challenge":7,"resource":"r0","version":1}'),
        frame(HELLO, b'{"a":' * 50000 + b"1" + b"}" * 50000),
        frame(HELLO, deep),
        frame(PARAMS, b"{}", length=(32 << 20)),                # 8 bytes that ask for 32 MiB
        frame(AUTH, b"\x00" * 16),
        frame(STATE, b'{"disk":"UpToDate","role":"Primary","uuid":"zz"}'),
        frame(RS_DONE, b"{}"),
        frame(DATA, struct.pack("!QQ", 0, 1) + b"X" * 4096),    # unauthenticated write at 0
        frame(99, b"?" * 64),
        b"GET / HTTP/1.0\r\n\r\n",
        bytes(range(256)) * 64,
    ]


def assert_unharmed(pair, daemons: dict[str, LabProcess], digests: dict[str, str],
                    size: int) -> None:
    for name, process in daemons.items():
        assert process.alive(), f"heartbeat on {name} died:\n{process.output()[-3000:]}"
    for name in NODES:
        state = pair.host(name).path(f"/run/vigil/volume/{pair.name}/state.json")
        assert state.exists(), f"the volume daemon on {name} is gone"
        pid = pair.daemon_pid(name)
        assert pair.host(name).run(["kill", "-0", str(pid)], check=False).returncode == 0, \
            f"the volume daemon on {name} died"
        assert pair.data_digest(name, size) == digests[name], f"{name}'s disk changed"
    assert holders(pair) == {"server5"}
    assert pair.status("server5")["role"] == "Primary"


def test_a_rogue_host_on_both_segments_changes_nothing(volume_pair):
    pair = volume_pair
    pair.start_pair()
    daemons = {name: start_heartbeat(pair, name) for name in NODES}
    wait_until(lambda: holders(pair) == {"server5"}, 20, "VIP on server5")
    wait_until(lambda: heartbeat_peer(pair, "server6")["status"] == "active", 10, "peer active")
    size = pair.status("server5")["size"]
    digests = {name: pair.data_digest(name, size) for name in NODES}
    assert digests["server5"] == digests["server6"]

    # 1. heartbeats: replayed, forged, downgraded, mutated; sent while the pair runs
    captured = capture(pair, 30)
    stop = time.monotonic() + 4
    wave = 0
    while time.monotonic() < stop:
        inject(pair, hostile_heartbeats(captured, seed=wave))
        assert holders(pair) == {"server5"}
        wave += 1
    for name in NODES:
        assert heartbeat_peer(pair, name)["status"] == "active"
    assert_unharmed(pair, daemons, digests, size)

    # 2. the listening side (server6) waits for its peer: a stranger connects instead
    pair.vigil("server5", "disconnect", pair.name)
    pair.wait_status("server6", lambda s: s["connection"] == "Connecting", 15, "listening")
    for _ in range(2):
        for payload in hostile_replication():
            send_quietly(pair, "198.51.100.6", payload)
    with contextlib.ExitStack() as held:  # a pile of idle connections
        for _ in range(64):
            with contextlib.suppress(OSError):
                held.enter_context(rogue_socket(pair, "198.51.100.6", 7789))
    assert_unharmed(pair, daemons, digests, size)
    pair.vigil("server5", "connect", pair.name)
    pair.wait_status("server5", lambda s: s["connection"] == "Connected", 30, "reconnected")
    assert_unharmed(pair, daemons, digests, size)

    # 3. the rogue takes the peer's address while the peer's lan link is down: the
    #    Primary's own connection attempts reach it, and it answers with garbage
    server6 = pair.host("server6")
    client = pair.host("client")
    server6.run(["ip", "link", "set", "eth0", "down"])
    try:
        pair.wait_status("server5", lambda s: s["connection"] != "Connected", 30, "peer lost")
        client.run(["ip", "addr", "add", "198.51.100.6/24", "dev", "eth0", "nodad"])
        # as an attacker would: announce the address, so the Primary's neighbour entry
        # (server6's MAC, good for up to a minute) points at the rogue now
        client.run(["arping", "-U", "-c", "2", "-I", "eth0", "198.51.100.6"], check=False)
        answered = impersonate_peer(pair, hostile_replication())
        assert answered == len(hostile_replication())
        assert_unharmed(pair, daemons, digests, size)
    finally:
        client.run(["ip", "addr", "del", "198.51.100.6/24", "dev", "eth0"], check=False)
        server6.run(["ip", "link", "set", "eth0", "up"])

    # 4. the real peer is back: the pair reconnects, nothing to resync, nothing changed
    pair.wait_status("server5", lambda s: s["connection"] == "Connected", 60, "reconnected")
    pair.wait_synced()
    assert pair.status("server6")["disk"] == "UpToDate"
    assert_unharmed(pair, daemons, digests, size)
    wait_until(lambda: heartbeat_peer(pair, "server5")["status"] == "active", 10, "peer active")
