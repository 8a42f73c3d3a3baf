"""Heartbeat's compressed messages: real captures from 3.0.6, byte-exact packing, hostile payloads.

The captures in data/ were sent by Debian's heartbeat 3.0.6 in the lab
(`traditional_compression on`, `compression_threshold 1`, authkeys `1 sha1
vigil-lab-secret`) for a 2.6 KB message written into its FIFO: zlib and bz2,
under `msgfmt classic` and `msgfmt netstring`.
"""

from __future__ import annotations

import bz2
import tracemalloc
import zlib
from pathlib import Path

import pytest

from vigil.ha.engine import NodeConfig, NodeEngine
from vigil.membership import compression
from vigil.membership.auth import AuthError, AuthKeys, sign, verify
from vigil.membership.codec import Compressor, PacketCodec
from vigil.membership.compression import CompressionError
from vigil.membership.liveness import Timings
from vigil.membership.messages import Envelope, Status, Unknown
from vigil.membership.wire import Field, FieldType, Message, WireError

DATA = Path(__file__).parent / "data"
LAB_KEYS = AuthKeys.from_pairs(1, {1: ("sha1", "vigil-lab-secret")})
KEYS = AuthKeys.from_pairs(1, {1: ("sha1", "secret")})
CAPTURES = sorted(p.name for p in DATA.glob("hb306-*.bin"))


def captured(name: str) -> bytes:
    return (DATA / name).read_bytes()


def packed(original: bytes, algorithm: str = "zlib", keys: AuthKeys = KEYS,
           name: str = compression.PAYLOAD_FIELD) -> bytes:
    """A compressed message around `original` (any bytes), signed as a peer with the key signs."""
    outer = Message([Field(name, original, FieldType.BINARY),
                     Field.text(compression.ALGORITHM_FIELD, algorithm)])
    return sign(outer, keys, auth_field=False)


def inner(text: bytes = b">>>\nt=status\nst=up\nsrc=n2\nseq=1\nhg=1\nts=1\n<<<\n\0") -> bytes:
    return text


# -- the captures ---------------------------------------------------------------------------
def test_the_four_captures_are_here():
    assert CAPTURES == ["hb306-bz2-classic.bin", "hb306-bz2-netstring.bin",
                        "hb306-zlib-classic.bin", "hb306-zlib-netstring.bin"]


@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_decodes_to_the_message_written_into_heartbeats_fifo(name):
    decoded = PacketCodec(LAB_KEYS).unpack(captured(name))
    message = decoded.message
    assert decoded.compressed == name.split("-")[1]
    assert isinstance(message, Unknown) and message.type == "bigtest"
    assert message.env.src == "server5.example.com" and message.env.seq >= 1
    assert len(message.env.srcuuid or b"") == 16
    fields = {f.name: f.value for f in message.extra}
    assert fields == {f"f{i}": b"x" * 300 for i in range(8)}
    # under msgfmt classic heartbeat puts its auth field inside; under netstring there is none
    assert decoded.verified.field_key == (1 if name.endswith("classic.bin") else None)


@pytest.mark.parametrize("name", CAPTURES)
def test_vigils_compressor_packs_the_captured_message_byte_for_byte(name):
    datagram = captured(name)
    original, algorithm = compression.expand(verify(datagram, LAB_KEYS).message)
    netstring = name.endswith("netstring.bin")
    again = sign(compression.compress(original, algorithm, netstring), LAB_KEYS,
                 auth_field=False)
    assert again == datagram


def test_a_capture_under_another_key_is_refused_before_it_is_opened():
    other = AuthKeys.from_pairs(1, {1: ("sha1", "other")})
    with pytest.raises(AuthError, match="trailer"):
        PacketCodec(other).unpack(captured("hb306-zlib-classic.bin"))


def test_a_wrong_auth_field_inside_is_refused():
    original, _ = compression.expand(verify(captured("hb306-zlib-classic.bin"),
                                            LAB_KEYS).message)
    fields = [Field.text("auth", "1 " + "0" * 40) if f.name == "auth" else f for f in original]
    datagram = sign(compression.compress(Message(fields), "zlib"), LAB_KEYS, auth_field=False)
    with pytest.raises(AuthError, match="auth field"):
        PacketCodec(LAB_KEYS).unpack(datagram)


# -- vigil's own sending --------------------------------------------------------------------
STATUS = Status(env=Envelope(src="n1", hg=7, ts=9, seq=3, ld="0.1 0.1 0.1 1/1 1", ttl=3),
                status="active")


@pytest.mark.parametrize("algorithm", sorted(compression.ALGORITHMS))
def test_messages_above_the_threshold_go_out_compressed_and_come_back(algorithm):
    codec = PacketCodec(KEYS, Compressor(algorithm, threshold=100))
    datagram = codec.pack(STATUS)
    assert compression.is_compressed(verify(datagram, KEYS).message)
    decoded = PacketCodec(KEYS).unpack(datagram)
    assert decoded.message == STATUS and decoded.compressed == algorithm
    assert decoded.verified.field_key == 1


def test_messages_up_to_the_threshold_and_without_a_compressor_go_out_plain():
    plain = PacketCodec(KEYS).pack(STATUS)
    size = len(verify(plain, KEYS).message.classic()) + 1  # what heartbeat measures (NUL)
    assert PacketCodec(KEYS, Compressor("zlib", threshold=size)).pack(STATUS) == plain
    assert PacketCodec(KEYS, Compressor("zlib", threshold=size - 1)).pack(STATUS) != plain


def test_an_unknown_algorithm_is_no_compressor():
    with pytest.raises(ValueError, match="unknown compression"):
        Compressor("lzma", 1024)


# -- hostile payloads -----------------------------------------------------------------------
def _peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("algorithm, bomb", [
    ("zlib", lambda: zlib.compress(b"\0" * 40_000_000, 9)),  # 40 MB in 39 KB
    ("bz2", lambda: bz2.compress(b"\0" * 100_000_000, 9)),  # 100 MB in 113 bytes
])
def test_a_zip_bomb_is_refused_without_inflating_it(algorithm, bomb):
    datagram = packed(bomb(), algorithm)
    assert len(datagram) < 65507
    codec = PacketCodec(KEYS)

    def refuse() -> None:
        with pytest.raises(CompressionError, match="expands beyond"):
            codec.unpack(datagram)

    # inflating it would take 40-100 MB; stopping at the limit takes about the limit
    assert _peak_bytes(refuse) < 4 * compression.MAX_EXPANDED


@pytest.mark.parametrize("algorithm", sorted(compression.ALGORITHMS))
def test_truncated_corrupt_and_padded_payloads_are_refused(algorithm):
    good = compression.ALGORITHMS[algorithm].compress(inner())
    PacketCodec(KEYS).unpack(packed(good, algorithm))  # the baseline is accepted
    cases = {
        "truncated": good[: len(good) // 2],
        "corrupt": good[:2] + bytes(b ^ 0x5A for b in good[2:12]) + good[12:],
        "stray bytes": good + b"more",
    }
    for reason, payload in cases.items():
        with pytest.raises(CompressionError, match=reason):
            PacketCodec(KEYS).unpack(packed(payload, algorithm))


@pytest.mark.parametrize("payload, reason", [
    (b"", "truncated"),
    (b"\0" * 64, "corrupt"),
    (b"BZh9", "truncated|corrupt"),
])
def test_payloads_that_are_no_stream_at_all_are_refused(payload, reason):
    for algorithm in compression.ALGORITHMS:
        with pytest.raises(CompressionError, match=reason):
            compression.inflate(algorithm, payload)


@pytest.mark.parametrize("original, reason", [
    (b"garbage", "holds no message"),
    (b">>>\nt=status\n", "does not end with <<<"),
    (b">>>\nt=status\n<<<\nsrc=n2\n<<<\n", "stray lines"),
    (b">>>\n(2)t=x\n<<<\n", "inside the zlib payload"),
    (b">>>\nnovalue\n<<<\n\0", "inside the zlib payload"),
    (b"###\n11:(0)t=status,%%%\n8:1 abcdef,", "trailer"),
    (b"###\n99:(0)t=status,%%%\n", "inside the zlib payload"),
])
def test_what_the_payload_holds_must_be_one_plain_message(original, reason):
    with pytest.raises(CompressionError, match=reason):
        PacketCodec(KEYS).unpack(packed(zlib.compress(original)))


def test_a_compressed_message_inside_a_compressed_message_is_refused():
    nested = Message([Field(compression.PAYLOAD_FIELD, zlib.compress(inner()), FieldType.BINARY),
                      Field.text(compression.ALGORITHM_FIELD, "zlib")])
    with pytest.raises(CompressionError, match="inside a compressed message"):
        PacketCodec(KEYS).unpack(packed(zlib.compress(nested.netstring_body())))


def test_the_outer_fields_must_be_as_heartbeat_writes_them():
    payload = zlib.compress(inner())
    with pytest.raises(CompressionError, match="unknown compression"):
        PacketCodec(KEYS).unpack(packed(payload, "lzo"))
    text = Message([Field.text(compression.PAYLOAD_FIELD, "x"),
                    Field.text(compression.ALGORITHM_FIELD, "zlib")])
    with pytest.raises(CompressionError, match="not BINARY"):
        PacketCodec(KEYS).unpack(sign(text, KEYS, auth_field=False))
    bare = Message([Field(compression.PAYLOAD_FIELD, payload, FieldType.BINARY)])
    with pytest.raises(CompressionError, match="without _compression_algorithm"):
        PacketCodec(KEYS).unpack(sign(bare, KEYS, auth_field=False))


def test_an_expanded_message_larger_than_a_datagram_still_parses_up_to_the_limit():
    big = Message([Field.text("t", "bigtest"), Field.text("src", "n2"),
                   Field.text("f", "y" * 100_000)])
    original = compression.ALGORITHMS["zlib"].compress(big.netstring_body())
    expanded, _ = compression.expand(verify(packed(original), KEYS).message)
    assert expanded == big
    with pytest.raises(CompressionError, match="expands beyond"):
        compression.expand(verify(packed(original), KEYS).message, limit=50_000)


# -- in the engine: counted, never raised ---------------------------------------------------
def _engine() -> NodeEngine:
    config = NodeConfig(me="n1", nodes=("n1", "n2"), links=("eth0",),
                        timings=Timings(keepalive=0.1, deadtime=0.5, initdead=1.0), keys=KEYS)
    node = NodeEngine(config, uuid=b"n1".ljust(16, b"."), generation=7, now=0.0,
                      wall_offset=1.8e9)
    node.start(0.0)
    return node


def test_the_engine_accepts_compressed_packets_and_counts_refusals_by_reason():
    node = _engine()
    peer = PacketCodec(KEYS, Compressor("bz2", threshold=100))
    status = Status(env=Envelope(src="n2", hg=5, ts=5, seq=1, ld="0 0 0 1/1 1", ttl=3),
                    status="active")
    node.receive(peer.pack(status), "eth0", 0.01)
    report = node.status(0.02)
    assert report["counters"]["compressed"] == 1 and report["counters"]["accepted"] == 1
    assert any(n["status"] == "active" for n in report["nodes"] if n["name"] == "n2")

    node.receive(packed(zlib.compress(b"\0" * 40_000_000, 9)), "eth0", 0.03)  # a bomb
    node.receive(packed(b"x\x9c" + b"\0" * 30), "eth0", 0.04)  # corrupt
    forged = packed(zlib.compress(inner()), keys=AuthKeys.from_pairs(1, {1: ("sha1", "x")}))
    out = node.receive(forged, "eth0", 0.05)
    assert out.actions == []
    rejected = node.status(0.06)["rejected"]
    assert rejected["bad_compression"] == 2
    assert rejected["bad_auth"] == 1 and rejected["malformed"] == 0
    node.tick(0.07)


def test_compression_errors_are_wire_errors():
    assert issubclass(CompressionError, WireError)


def test_the_fuzzers_seed_is_the_committed_capture():
    from vigil.testing.fuzz import CAPTURED_COMPRESSED

    assert captured("hb306-zlib-classic.bin") == CAPTURED_COMPRESSED


def test_a_compressed_field_is_carried_unopened_as_heartbeat_itself_does():
    """FT_COMPRESS fields (Pacemaker's) are opened only by heartbeat's API clients."""
    cib = Field("cib", zlib.compress(b"\0" * 40_000_000, 9)[:2000], FieldType.COMPRESSED)
    message = Message([Field.text("t", "cib-update"), Field.text("src", "n2"),
                       Field.text("seq", "1"), Field.text("hg", "1"), Field.text("ts", "1"),
                       cib, Field.text(compression.ALGORITHM_FIELD, "zlib")])
    decoded = PacketCodec(KEYS).unpack(sign(message, KEYS))  # no auth field: no classic form
    assert decoded.compressed is None
    assert cib in decoded.message.extra
