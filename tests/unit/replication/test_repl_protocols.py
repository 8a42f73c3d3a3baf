"""Protocol A/B/C completion rules, the transfer log, auth, and the wire format."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.replication import auth, wire
from vigil.replication.completion import Progress, Protocol, TransferLog, is_complete


@pytest.mark.parametrize(
    ("protocol", "progress", "complete"),
    [
        (Protocol.C, Progress(local_done=True, queued=True, received=True), False),
        (Protocol.C, Progress(local_done=True, queued=True, received=True, written=True), True),
        (Protocol.C, Progress(local_done=False, written=True), False),
        (Protocol.B, Progress(local_done=True, queued=True), False),
        (Protocol.B, Progress(local_done=True, queued=True, received=True), True),
        (Protocol.A, Progress(local_done=True), False),
        (Protocol.A, Progress(local_done=True, queued=True), True),
        (Protocol.A, Progress(local_done=False, queued=True), False),
        # No peer: the local disk alone completes it (and the bitmap remembers it).
        (Protocol.C, Progress(local_done=True, local_only=True), True),
        (Protocol.C, Progress(failed=True), True),
    ],
)
def test_completion(protocol, progress, complete):
    assert is_complete(protocol, progress) is complete


def test_transfer_log_hands_back_unconfirmed_writes_on_loss():
    log = TransferLog()
    a = log.start(0, 4096)
    b = log.start(8192, 4096)
    c = log.start(1 << 20, 4096)
    log.received(b.seq)
    assert log.written(a.seq) is a
    lost = log.connection_lost()
    # a was written by the peer but no flush of its disk covers it: lost with its power
    assert [t.seq for t in lost] == [b.seq, c.seq, a.seq]
    assert b.progress.local_only and c.progress.local_only
    assert len(log) == 0 and log.unflushed == 0
    assert log.written(b.seq) is None  # a late ack after the loss changes nothing


def test_a_peer_flush_makes_only_the_writes_sent_before_it_durable():
    log = TransferLog()
    a, b = log.start(0, 4096), log.start(4096, 4096)
    log.written(a.seq, now=1.0)
    covers = log.barrier()  # FLUSH sent after a and b
    c = log.start(8192, 4096)
    log.written(b.seq, now=1.1)
    log.written(c.seq, now=1.2)
    assert log.unflushed == 3
    log.flushed(covers, now=1.3)
    assert log.unflushed == 1  # c was sent after the FLUSH
    assert [t.seq for t in log.connection_lost()] == [c.seq]


def test_the_peer_is_asked_to_flush_when_acknowledged_writes_age_or_pile_up():
    from vigil.replication.completion import FLUSH_AFTER_SECONDS, FLUSH_AFTER_WRITES
    log = TransferLog()
    assert not log.flush_due(100.0)  # nothing waiting
    log.written(log.start(0, 4096).seq, now=10.0)
    assert not log.flush_due(10.0 + FLUSH_AFTER_SECONDS / 2)
    assert log.flush_due(10.0 + FLUSH_AFTER_SECONDS)
    upto = log.barrier()
    assert not log.flush_due(20.0)  # one outstanding at a time
    log.flushed(upto, now=20.0)
    assert not log.flush_due(30.0) and log.unflushed == 0
    for i in range(FLUSH_AFTER_WRITES):
        log.written(log.start(i * 4096, 4096).seq, now=40.0)
    assert log.flush_due(40.0)  # many: at once


def test_auth_challenge_response():
    secret = b"s3cret"
    mine, theirs = b"m" * 32, b"t" * 32
    answer = auth.response(secret, mine, "sha1", b"C")
    assert auth.verify(secret, mine, answer, "sha1", b"C")
    assert not auth.verify(b"wrong", mine, answer, "sha1", b"C")
    assert not auth.verify(secret, mine, answer, "sha1", b"A")  # reflected role
    assert not auth.acceptable_challenge(mine, mine)
    assert auth.acceptable_challenge(mine, theirs)
    with pytest.raises(ValueError):
        auth.algorithm("nope")


def test_golden_vectors():
    assert wire.Ack(wire.T.WRITE_ACK, 5).encode().hex() == "5647080000000008" + "0000000000000005"
    data = wire.Data(wire.T.DATA, 1, 4096, b"\xaa\xbb", fua=True).encode()
    assert data.hex() == "5647060100000012" + "0000000000000001" + "0000000000001000" + "aabb"
    control = wire.Control(wire.T.HELLO, {"v": 1}).encode()
    assert control == bytes.fromhex("5647010000000007") + b'{"v":1}'


messages = st.one_of(
    st.builds(wire.Data, st.sampled_from([wire.T.DATA, wire.T.RS_DATA]),
              st.integers(0, 2**64 - 1), st.integers(0, 2**63), st.binary(max_size=300),
              st.booleans(), st.sampled_from([b"", b"\x07" * wire.DIGEST_BYTES])),
    st.builds(wire.Ack, st.sampled_from(wire.Ack.TYPES), st.integers(0, 2**64 - 1)),
    st.builds(wire.Range, st.sampled_from(wire.Range.TYPES), st.integers(0, 2**63),
              st.integers(0, 2**63)),
    st.builds(wire.Control, st.sampled_from(wire.Control.TYPES),
              st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=3)),
    st.builds(wire.Blob, st.sampled_from(wire.Blob.TYPES), st.binary(max_size=100)),
    st.builds(wire.Verify, st.sampled_from(wire.Verify.TYPES), st.integers(0, 2**63),
              st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.builds(wire.Batch, st.just(wire.T.RS_ACKS),
              st.lists(st.tuples(st.integers(0, 2**63), st.integers(1, 2**32 - 1)),
                       min_size=1, max_size=wire.MAX_BATCH_RANGES)),
    st.lists(st.tuples(st.integers(0, 2**63), st.binary(min_size=1, max_size=40)),
             min_size=1, max_size=5).map(lambda pieces: wire.Batch(
                 wire.T.RS_BATCH, [(offset, len(data)) for offset, data in pieces],
                 b"".join(data for _, data in pieces))),
)


@given(st.lists(messages, max_size=8), st.integers(1, 50))
def test_stream_round_trip_in_any_chunking(batch, chunk):
    stream = b"".join(m.encode() for m in batch)
    decoder = wire.Decoder()
    out = []
    for i in range(0, len(stream), chunk):
        out.extend(decoder.feed(stream[i:i + chunk]))
    assert out == batch
    assert decoder.pending == 0


def test_a_batch_must_carry_exactly_the_data_of_its_ranges():
    good = wire.Batch(wire.T.RS_BATCH, [(0, 2), (4096, 3)], b"abcde").encode()
    (message,) = wire.Decoder().feed(good)
    assert message.ranges == [(0, 2), (4096, 3)]
    head = wire.HEADER.size
    bad = {
        "data for ranges": good[:-1],  # a byte short (header length kept consistent below)
        "ranges (1 to": wire.Batch(wire.T.RS_ACKS, [(0, 1)] * (wire.MAX_BATCH_RANGES + 1))
        .encode(),
        "an empty range": wire.Batch(wire.T.RS_ACKS, [(0, 0)]).encode(),
        "carries data": wire.Batch(wire.T.RS_ACKS, [(0, 1)], b"x").encode(),
    }
    for why, frame in bad.items():
        if why == "data for ranges":
            frame = wire.HEADER.pack(wire.MAGIC, wire.T.RS_BATCH, 0, len(frame) - head) \
                + frame[head:]
        with pytest.raises(wire.ProtocolError, match=re.escape(why)):
            list(wire.Decoder().feed(frame))
    no_ranges = wire.HEADER.pack(wire.MAGIC, wire.T.RS_ACKS, 0, 2) + b"\0\0"
    with pytest.raises(wire.ProtocolError, match="0 ranges"):
        list(wire.Decoder().feed(no_ranges))


def test_garbage_is_a_protocol_error():
    with pytest.raises(wire.ProtocolError):
        list(wire.Decoder().feed(b"GET / HTTP/1.1\r\n\r\n"))
    with pytest.raises(wire.ProtocolError):
        list(wire.Decoder().feed(bytes.fromhex("5647ff0000000000")))


def test_bitmap_message_round_trip():
    bits = bytes(4096) + b"\x01"
    assert wire.bitmap_of(wire.bitmap_message(bits)) == bits


def test_digests_are_fixed_width_and_an_unknown_name_is_refused():
    from vigil.config.drbd import DIGEST_ALGORITHMS
    from vigil.replication.digests import digester

    block = bytes(range(256)) * 16
    seen = set()
    for name in DIGEST_ALGORITHMS:
        digest = digester(name)(block)
        assert len(digest) == wire.DIGEST_BYTES
        assert digester(name.upper())(memoryview(block)) == digest
        assert digester(name)(block[:-1] + b"\0") != digest  # one byte changed
        seen.add(digest)
    assert len(seen) == len(DIGEST_ALGORITHMS) - 1  # crc32c is computed as crc32
    with pytest.raises(ValueError, match="whirlpool"):
        digester("whirlpool")
