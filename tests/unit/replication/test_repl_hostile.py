"""A hostile or broken peer: every message is checked before use and can only end its link."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import zlib

import pytest

from vigil.replication import link, messages, wire
from vigil.replication.wire import ProtocolError

GENERATIONS = [1, 2, 3, 4]
PARAMS = {"generations": GENERATIONS, "crashed_primary": False, "primary": True, "dirty": 0,
          "size": 1 << 26, "disk": "UpToDate", "inconsistent": False, "primary_since": 0,
          "discard_my_data": False, "protocol": "C", "two_primaries": False, "host": "a"}


@pytest.mark.parametrize("challenge", ["not hex!", 7, None, "abc", "00" * 33, ["00"]])
def test_a_challenge_that_is_not_short_hex_is_a_protocol_error(challenge):
    with pytest.raises(ProtocolError):
        messages.challenge({"challenge": challenge})
    assert messages.challenge({"challenge": "00ff" * 16}) == bytes.fromhex("00ff" * 16)
    assert messages.challenge({}) == b""


@pytest.mark.parametrize("field, value", [
    ("generations", [1, 2, 3]), ("generations", [1, 2, 3, -1]), ("generations", "x"),
    ("generations", [1, 2, 3, 2**64]), ("primary", "yes"), ("dirty", -1), ("dirty", True),
    ("size", 1.5), ("disk", "Wonderful"), ("protocol", 3), ("host", "h" * 300),
    ("primary_since", "now"), ("features", "rs-batch"), ("features", [1]),
    ("features", ["x" * 33]), ("features", ["f"] * 17),
])
def test_params_fields_are_checked(field, value):
    assert messages.params(dict(PARAMS)) == PARAMS
    with pytest.raises(ProtocolError):
        messages.params({**PARAMS, field: value})


def test_a_peer_without_features_is_an_older_vigil_with_none():
    assert messages.features(dict(PARAMS)) == frozenset()
    assert messages.features({**PARAMS, "features": ["rs-batch", "later"]}) == {
        "rs-batch", "later"}


def test_state_and_rs_done_fields_are_checked():
    assert messages.state({"role": "Secondary", "disk": "UpToDate"})[:2] == (
        messages.Role.SECONDARY, messages.Disk.UP_TO_DATE)
    for bad in ({"role": "King"}, {"disk": 5}, {"verify": ["start"]}):
        with pytest.raises(ProtocolError):
            messages.state(bad)
    assert messages.invalidate_asked({"invalidate": True})
    assert not messages.invalidate_asked({})
    with pytest.raises(ProtocolError):
        messages.invalidate_asked({"invalidate": "please"})
    assert messages.sync_paused({"sync_paused": True}) is True
    assert messages.sync_paused({"role": "Primary"}) is None
    for value in ("yes", 1, None, [True]):
        with pytest.raises(ProtocolError):
            messages.sync_paused({"sync_paused": value})
    assert messages.skip_initial_sync({"skip_initial_sync": 7}) == 7
    assert messages.skip_initial_sync({"role": "Primary"}) is None
    for value in (0, -1, 2**64, True, "7", 7.0, None, [7]):
        with pytest.raises(ProtocolError):  # never 0, never a bool, 64 bits at most
            messages.skip_initial_sync({"skip_initial_sync": value})
    with pytest.raises(ProtocolError):
        messages.rs_done({})
    with pytest.raises(ProtocolError):
        messages.within(4096, 8192, 8192, "DATA")
    messages.within(0, 8192, 8192, "DATA")


def test_a_goodbye_says_how_far_the_peer_flushed_as_a_sequence_number():
    assert messages.bye_flushed({"flushed_through": 42}) == 42
    assert messages.bye_flushed({"outdate_you": True}) is None
    for bad in (-1, 2**64, True, "42", 4.2, [42]):
        with pytest.raises(ProtocolError):
            messages.bye_flushed({"flushed_through": bad})


def test_params_digest_names_are_bounded_text():
    assert messages.params({**PARAMS, "csums_alg": "sha1", "integrity_alg": ""})
    for field in messages.ALGORITHM_FIELDS:
        for bad in (7, ["sha1"], "x" * 33):
            with pytest.raises(ProtocolError):
                messages.params({**PARAMS, field: bad})


def test_a_data_message_flagged_with_a_digest_must_hold_one():
    framed = wire.Data(wire.T.DATA, 1, 0, b"z" * 8, digest=b"d" * wire.DIGEST_BYTES).encode()
    decoded = wire.Decoder().feed(framed)
    [message] = list(decoded)
    assert message.digest == b"d" * wire.DIGEST_BYTES and bytes(message.payload) == b"z" * 8
    short = wire.HEADER.pack(wire.MAGIC, wire.T.DATA, wire.FLAG_DIGEST, 20) + bytes(20)
    with pytest.raises(ProtocolError, match="short body"):
        list(wire.Decoder().feed(short))


def test_deep_json_is_refused_before_the_parser_recurses():
    for body in (b"[" * 100000 + b"]" * 100000, b'{"a":' * 50000 + b"1" + b"}" * 50000):
        with pytest.raises(ProtocolError):
            wire.decode(wire.T.HELLO, 0, body)
    # brackets inside strings do not count
    assert wire.decode(wire.T.HELLO, 0, b'{"a":"[[[[[[[[[[[[[[[["}').fields == {"a": "[" * 16}


def test_a_bitmap_is_inflated_only_up_to_the_devices_size():
    bomb = wire.bitmap_message(b"\0" * (64 << 20))  # 64 MiB of zeros compress to ~64 KiB
    with pytest.raises(ProtocolError):
        wire.bitmap_of(bomb, 2048)
    assert wire.bitmap_of(wire.bitmap_message(b"\1" * 2048), 2048) == b"\1" * 2048


def test_before_authentication_a_header_cannot_ask_for_a_large_buffer():
    async def scenario():
        accepted: asyncio.Queue[link.PeerProtocol] = asyncio.Queue()
        server = await link.listen("127.0.0.1", 0, accepted)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = await asyncio.wait_for(accepted.get(), 5)
        writer.write(wire.HEADER.pack(wire.MAGIC, wire.T.PARAMS, 0, 32 << 20))
        with pytest.raises(ProtocolError, match="too large"):
            await asyncio.wait_for(peer.read(), 5)
        assert peer._body is None  # no buffer was allocated for it
        writer.close()
        server.close()
    asyncio.run(scenario())


def test_only_the_configured_peer_address_is_accepted_and_extra_connections_are_closed():
    async def scenario():
        accepted: asyncio.Queue[link.PeerProtocol] = asyncio.Queue()
        refusals: list[tuple[str, str]] = []
        server = await link.listen("127.0.0.1", 0, accepted, peer="127.0.0.2",
                                   refused=lambda a, why: refusals.append((a, why)))
        port = server.sockets[0].getsockname()[1]
        stranger = socket.create_connection(("127.0.0.1", port))  # from 127.0.0.1
        await asyncio.sleep(0)
        for _ in range(100):
            if refusals:
                break
            await asyncio.sleep(0.01)
        assert refusals == [("127.0.0.1", "unexpected connection: not the configured peer")]
        assert accepted.empty()
        friends = []
        for _ in range(link.MAX_PENDING + 2):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.connect(("127.0.0.1", port))
            friends.append(sock)
        for _ in range(200):
            if len(refusals) >= 3:
                break
            await asyncio.sleep(0.01)
        assert accepted.qsize() == link.MAX_PENDING
        assert [why for _, why in refusals[1:]] == ["too many connections waiting"] * 2
        for sock in (stranger, *friends):
            sock.close()
        server.close()
    asyncio.run(scenario())


def _valid_frames() -> list[bytes]:
    return [
        wire.Control(wire.T.HELLO, {"version": 1, "resource": "r0", "challenge": "00" * 32,
                                    "alg": "sha1"}).encode(),
        wire.Control(wire.T.PARAMS, PARAMS).encode(),
        wire.Control(wire.T.STATE, {"role": "Primary", "disk": "UpToDate"}).encode(),
        wire.Control(wire.T.RS_DONE, {"generations": GENERATIONS}).encode(),
        wire.bitmap_message(b"\0" * 256).encode(),
        wire.Data(wire.T.DATA, 1, 4096, b"x" * 4096).encode(),
        wire.Ack(wire.T.WRITE_ACK, 9).encode(),
        wire.Range(wire.T.RS_ACK, 0, 4096).encode(),
        wire.Verify(wire.T.OV_REQUEST, 0, 2, b"d" * 32).encode(),
        wire.Data(wire.T.RS_DATA, 0, 8192, b"y" * 4096, digest=b"g" * wire.DIGEST_BYTES).encode(),
        wire.Verify(wire.T.CSUM_REQUEST, 4096, 2, b"c" * 32).encode(),
        wire.Verify(wire.T.CSUM_REPLY, 4096, 2, b"\2").encode(),
        wire.Batch(wire.T.RS_BATCH, [(0, 4096), (16384, 4096)], b"b" * 8192).encode(),
        wire.Batch(wire.T.RS_ACKS, [(0, 4096), (16384, 4096)]).encode(),
    ]


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    choice = rng.randrange(5)
    if choice == 0:
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1:
        del data[rng.randrange(len(data)):]
    elif choice == 2:
        struct.pack_into("!I", data, 4, rng.choice([0, 1, 7, 4096, 2**31, 2**32 - 1]))
    elif choice == 3:
        body = rng.choice([b"[" * 5000, json.dumps({"generations": "x" * 100}).encode(),
                           b'{"challenge":"zz","resource":"r0"}', zlib.compress(b"\0" * 99999),
                           bytes(rng.randrange(256) for _ in range(64))])
        data = bytearray(wire.HEADER.pack(wire.MAGIC, rng.randrange(0, 30), 0, len(body)) + body)
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    return bytes(data)


CHECKS = {
    wire.T.HELLO: lambda m: (messages.hello_resource(m.fields), messages.challenge(m.fields)),
    wire.T.PARAMS: lambda m: messages.params(m.fields),
    wire.T.STATE: lambda m: messages.state(m.fields),
    wire.T.RS_DONE: lambda m: messages.rs_done(m.fields),
    wire.T.BITMAP: lambda m: wire.bitmap_of(m, 256),
}


def test_fuzz_mutated_frames_end_in_a_protocol_error_or_a_valid_message():
    """A fixed budget of seeded mutations of real frames through decoder and checks."""
    rng = random.Random(20261204)
    frames = _valid_frames()
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(4000):
        decoder = wire.Decoder()
        stream = b"".join(_mutate(rng, rng.choice(frames)) for _ in range(rng.randint(1, 3)))
        try:
            for message in decoder.feed(stream):
                check = CHECKS.get(message.type)
                if check is not None:
                    check(message)
            outcomes["ok"] += 1
        except ProtocolError:
            outcomes["refused"] += 1
    assert outcomes["ok"] and outcomes["refused"]
