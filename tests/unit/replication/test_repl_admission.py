"""Which peer messages a connected node acts on: ranges, roles, states and outstanding questions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.replication import wire
from vigil.replication.admission import (
    DIGEST_BYTES,
    MAX_PEER_FLUSHES,
    MAX_REMOTE_READ,
    VERIFY_CHUNK_BLOCKS,
    Handling,
    View,
    admit,
)
from vigil.replication.geometry import BLOCK_SIZE
from vigil.replication.states import Repl, Role
from vigil.replication.wire import ProtocolError

SIZE = 1 << 20  # 256 blocks
SECONDARY = View(size=SIZE, role=Role.SECONDARY, repl=Repl.ESTABLISHED)
PRIMARY = View(size=SIZE, role=Role.PRIMARY, repl=Repl.ESTABLISHED)
GENERATIONS = {"generations": [1, 2, 3, 4]}


def refused(message: wire.Message, view: View) -> str:
    with pytest.raises(ProtocolError) as caught:
        admit(message, view)
    return str(caught.value)


def test_a_replicated_write_lands_only_inside_the_device_and_never_on_a_single_primary():
    assert admit(wire.Data(wire.T.DATA, 1, 0, b"x" * 512), SECONDARY) is Handling.WRITE
    assert admit(wire.Data(wire.T.DATA, 1, SIZE - 512, b"x" * 512), SECONDARY) is Handling.WRITE
    assert "outside the device" in refused(wire.Data(wire.T.DATA, 1, SIZE - 511, b"x" * 512),
                                           SECONDARY)
    assert "Primary" in refused(wire.Data(wire.T.DATA, 1, 0, b"x"), PRIMARY)
    two = View(size=SIZE, role=Role.PRIMARY, repl=Repl.ESTABLISHED, two_primaries=True)
    assert admit(wire.Data(wire.T.DATA, 1, 0, b"x"), two) is Handling.WRITE


def test_resync_data_and_its_end_come_only_to_a_sync_target():
    target = View(size=SIZE, role=Role.SECONDARY, repl=Repl.SYNC_TARGET)
    data = wire.Data(wire.T.RS_DATA, 0, 4 * BLOCK_SIZE, b"r" * BLOCK_SIZE)
    assert admit(data, target) is Handling.RESYNC_WRITE
    assert "not SyncTarget" in refused(data, SECONDARY)
    assert "block" in refused(wire.Data(wire.T.RS_DATA, 0, 100, b"r"), target)
    done = wire.Control(wire.T.RS_DONE, GENERATIONS)
    assert admit(done, target) is Handling.RESYNC_DONE
    assert "not SyncTarget" in refused(done, SECONDARY)
    assert "generations" in refused(wire.Control(wire.T.RS_DONE, {}), target)


def test_a_resync_acknowledgement_must_answer_data_this_node_sent():
    # Acknowledged resync ranges are marked in sync: one that answers nothing would
    # clear out-of-sync bits of data the peer never received.
    source = View(size=SIZE, role=Role.PRIMARY, repl=Repl.SYNC_SOURCE,
                  resync_in_flight={8: 4 * BLOCK_SIZE})
    assert admit(wire.Range(wire.T.RS_ACK, 8 * BLOCK_SIZE, 4 * BLOCK_SIZE), source) \
        is Handling.RESYNC_ACKED
    assert "no resync data" in refused(wire.Range(wire.T.RS_ACK, 0, BLOCK_SIZE), source)
    assert "no resync data" in refused(wire.Range(wire.T.RS_ACK, 8 * BLOCK_SIZE + 1, 1), source)
    assert "not SyncSource" in refused(wire.Range(wire.T.RS_ACK, 8 * BLOCK_SIZE, BLOCK_SIZE),
                                       PRIMARY)


def test_a_resync_batch_holds_ordered_block_ranges_inside_the_device():
    target = View(size=SIZE, role=Role.SECONDARY, repl=Repl.SYNC_TARGET)
    two = [(0, BLOCK_SIZE), (8 * BLOCK_SIZE, BLOCK_SIZE)]
    batch = wire.Batch(wire.T.RS_BATCH, two, b"r" * 2 * BLOCK_SIZE)
    assert admit(batch, target) is Handling.RESYNC_WRITE_BATCH
    assert "not SyncTarget" in refused(batch, SECONDARY)
    assert "order" in refused(wire.Batch(wire.T.RS_BATCH, two[::-1], b"r" * 2 * BLOCK_SIZE),
                              target)
    assert "order" in refused(wire.Batch(wire.T.RS_BATCH, [(0, 2 * BLOCK_SIZE),
                                                          (BLOCK_SIZE, BLOCK_SIZE)],
                                         b"r" * 3 * BLOCK_SIZE), target)
    assert "block" in refused(wire.Batch(wire.T.RS_BATCH, [(100, 1)], b"r"), target)
    assert "outside" in refused(wire.Batch(wire.T.RS_BATCH, [(SIZE, BLOCK_SIZE)],
                                           b"r" * BLOCK_SIZE), target)


def test_resync_batch_acknowledgements_must_answer_data_this_node_sent():
    source = View(size=SIZE, role=Role.PRIMARY, repl=Repl.SYNC_SOURCE,
                  resync_in_flight={0: BLOCK_SIZE, 8: BLOCK_SIZE})
    both = [(0, BLOCK_SIZE), (8 * BLOCK_SIZE, BLOCK_SIZE)]
    assert admit(wire.Batch(wire.T.RS_ACKS, both), source) is Handling.RESYNC_ACKED_BATCH
    assert "no resync data" in refused(
        wire.Batch(wire.T.RS_ACKS, [*both, (9 * BLOCK_SIZE, BLOCK_SIZE)]), source)
    assert "not SyncSource" in refused(wire.Batch(wire.T.RS_ACKS, both), PRIMARY)


def test_a_verify_request_is_bounded_and_its_digests_match_its_count():
    good = wire.Verify(wire.T.OV_REQUEST, 0, 2, b"d" * 2 * DIGEST_BYTES)
    assert admit(good, SECONDARY) is Handling.VERIFY_BLOCKS
    assert admit(good, View(size=SIZE, role=Role.SECONDARY, repl=Repl.VERIFY_T)) \
        is Handling.VERIFY_BLOCKS
    assert "digests" in refused(wire.Verify(wire.T.OV_REQUEST, 0, 2, b"d" * 31), SECONDARY)
    big = 1 << 30  # a request this large would be read and hashed on the event loop
    huge = wire.Verify(wire.T.OV_REQUEST, 0, VERIFY_CHUNK_BLOCKS + 1,
                       b"d" * (VERIFY_CHUNK_BLOCKS + 1) * DIGEST_BYTES)
    assert "more than" in refused(huge, View(size=big, role=Role.SECONDARY,
                                             repl=Repl.ESTABLISHED))
    target = View(size=SIZE, role=Role.SECONDARY, repl=Repl.SYNC_TARGET)
    assert "OV_REQUEST while SyncTarget" in refused(good, target)


def test_verify_answers_and_the_end_of_a_verify_match_this_nodes_verify():
    reply = wire.Verify(wire.T.OV_REPLY, 0, 8, b"\0")
    asking = View(size=SIZE, role=Role.PRIMARY, repl=Repl.VERIFY_S, verify_outstanding=1)
    assert admit(reply, asking) is Handling.VERIFY_ANSWER
    assert "outstanding" in refused(reply, View(size=SIZE, role=Role.PRIMARY,
                                                repl=Repl.VERIFY_S))
    assert "outstanding" in refused(reply, PRIMARY)
    done = wire.Control(wire.T.OV_DONE, {"out_of_sync": 0})
    assert admit(done, View(size=SIZE, role=Role.SECONDARY, repl=Repl.VERIFY_T)) \
        is Handling.VERIFY_DONE
    assert admit(done, asking) is Handling.NOTHING
    assert "not VerifyT" in refused(done, SECONDARY)


def test_csums_digests_come_only_to_a_sync_target_and_answers_only_to_what_was_asked():
    target = View(size=SIZE, role=Role.SECONDARY, repl=Repl.SYNC_TARGET)
    request = wire.Verify(wire.T.CSUM_REQUEST, 4 * BLOCK_SIZE, 2, b"d" * 2 * DIGEST_BYTES)
    assert admit(request, target) is Handling.CSUM_BLOCKS
    assert "not SyncTarget" in refused(request, SECONDARY)
    assert "digests" in refused(wire.Verify(wire.T.CSUM_REQUEST, 0, 2, b"d" * 5), target)
    assert "more than" in refused(wire.Verify(
        wire.T.CSUM_REQUEST, 0, VERIFY_CHUNK_BLOCKS + 1,
        b"d" * (VERIFY_CHUNK_BLOCKS + 1) * DIGEST_BYTES),
        View(size=1 << 30, role=Role.SECONDARY, repl=Repl.SYNC_TARGET))
    # an answer marks blocks in sync: one that answers no request of this node is refused
    source = View(size=SIZE, role=Role.PRIMARY, repl=Repl.SYNC_SOURCE, csums_in_flight={4})
    reply = wire.Verify(wire.T.CSUM_REPLY, 4 * BLOCK_SIZE, 2, b"\1")
    assert admit(reply, source) is Handling.CSUM_ANSWER
    assert "no digests" in refused(wire.Verify(wire.T.CSUM_REPLY, 0, 2, b"\1"), source)
    assert "mask" in refused(wire.Verify(wire.T.CSUM_REPLY, 4 * BLOCK_SIZE, 2, b""), source)
    assert "not SyncSource" in refused(reply, PRIMARY)


def test_the_peer_cannot_pile_up_flushes():
    flush = wire.Ack(wire.T.FLUSH, 7)
    assert admit(flush, SECONDARY) is Handling.FLUSH_FOR_PEER
    busy = View(size=SIZE, role=Role.SECONDARY, repl=Repl.ESTABLISHED,
                peer_flushes=MAX_PEER_FLUSHES)
    assert "outstanding" in refused(flush, busy)


def test_handshake_messages_are_refused_once_connected():
    for message in (wire.Control(wire.T.HELLO, {}), wire.Control(wire.T.PARAMS, {}),
                    wire.bitmap_message(b"")):
        assert "unexpected" in refused(message, SECONDARY)


ranges = st.tuples(st.integers(-1, 2 * SIZE), st.integers(0, 3 * BLOCK_SIZE))


@st.composite
def peer_messages(draw: st.DrawFn) -> wire.Message:
    kind = draw(st.sampled_from(list(wire.T)))
    offset, length = draw(ranges)
    offset = max(offset, 0)
    if kind in (wire.T.DATA, wire.T.RS_DATA, wire.T.READ_REPLY):
        return wire.Data(kind, draw(st.integers(0, 99)), offset, b"p" * length)
    if kind is wire.T.READ_REQUEST:
        return wire.ReadRequest(kind, draw(st.integers(0, 99)), offset,
                                draw(st.sampled_from([0, length, MAX_REMOTE_READ + 1])))
    if kind in (wire.T.RS_ACK, wire.T.OUT_OF_SYNC):
        return wire.Range(kind, offset, length)
    if kind in wire.Batch.TYPES:
        pieces = [(max(o, 0), n) for o, n in draw(st.lists(ranges, min_size=1, max_size=4))]
        data = b"p" * sum(n for _, n in pieces) if kind is wire.T.RS_BATCH else b""
        return wire.Batch(kind, pieces, data)
    if kind in wire.Verify.TYPES:
        count = draw(st.integers(0, VERIFY_CHUNK_BLOCKS + 2))
        payload = draw(st.sampled_from([b"", b"\0" * ((count + 7) // 8),
                                        b"d" * count * DIGEST_BYTES]))
        return wire.Verify(kind, offset, count, payload)
    if kind in wire.Control.TYPES:
        fields = draw(st.sampled_from([{}, GENERATIONS, {"role": "Primary"},
                                       {"disk": "Nonsense"}, {"role": 3}]))
        return wire.Control(kind, fields)
    if kind is wire.T.BITMAP:
        return wire.bitmap_message(b"")
    return wire.Ack(kind, draw(st.integers(0, 99)))


views = st.builds(View, size=st.sampled_from([0, BLOCK_SIZE, SIZE]),
                  role=st.sampled_from(list(Role)), repl=st.sampled_from(list(Repl)),
                  two_primaries=st.booleans(), verify_outstanding=st.integers(0, 2),
                  resync_in_flight=st.frozensets(st.integers(0, 300), max_size=4),
                  peer_flushes=st.integers(0, MAX_PEER_FLUSHES),
                  csums_in_flight=st.frozensets(st.integers(0, 300), max_size=4),
                  serves_peer_reads=st.booleans(),
                  reads_outstanding=st.frozensets(st.integers(0, 99), max_size=4))


def _spans(message: wire.Message) -> list[tuple[int, int]]:
    if isinstance(message, wire.Batch):
        return list(message.ranges)
    span = _span(message)
    return [] if span is None else [span]


def _span(message: wire.Message) -> tuple[int, int] | None:
    if isinstance(message, wire.Data):
        return message.offset, len(message.payload)
    if isinstance(message, wire.Range):
        return message.offset, message.length
    if isinstance(message, wire.Verify):
        return message.offset, message.count * BLOCK_SIZE
    if isinstance(message, wire.ReadRequest):
        return message.offset, message.length
    return None


@settings(max_examples=3000, deadline=None)
@given(peer_messages(), views)
def test_any_message_in_any_state_is_admitted_safely_or_refused(message, view):
    try:
        handling = admit(message, view)
    except ProtocolError:
        return
    for offset, length in _spans(message):
        assert offset >= 0 and offset + length <= view.size
    if handling is Handling.WRITE:
        assert view.role is not Role.PRIMARY or view.two_primaries
    if handling in (Handling.RESYNC_WRITE, Handling.RESYNC_DONE, Handling.RESYNC_WRITE_BATCH):
        assert view.repl is Repl.SYNC_TARGET
    if handling in (Handling.RESYNC_WRITE_BATCH, Handling.RESYNC_ACKED_BATCH):
        ends = [offset + length for offset, length in message.ranges]
        assert all(offset % BLOCK_SIZE == 0 for offset, _ in message.ranges)
        assert all(later >= end for (later, _), end in zip(message.ranges[1:], ends[:-1],
                                                            strict=True))
    if handling is Handling.RESYNC_ACKED_BATCH:
        assert view.repl is Repl.SYNC_SOURCE
        assert all(offset // BLOCK_SIZE in view.resync_in_flight for offset, _ in message.ranges)
    if handling is Handling.RESYNC_ACKED:
        assert view.repl is Repl.SYNC_SOURCE
        assert message.offset // BLOCK_SIZE in view.resync_in_flight
    if handling is Handling.VERIFY_BLOCKS:
        assert 0 < message.count <= VERIFY_CHUNK_BLOCKS
    if handling is Handling.VERIFY_ANSWER:
        assert view.verify_outstanding > 0
    if handling is Handling.CSUM_BLOCKS:
        assert view.repl is Repl.SYNC_TARGET and 0 < message.count <= VERIFY_CHUNK_BLOCKS
        assert len(message.payload) == message.count * DIGEST_BYTES
    if handling is Handling.READ_FOR_PEER:
        assert view.serves_peer_reads and 0 < message.length <= MAX_REMOTE_READ
    if handling is Handling.READ_ANSWERED:
        assert message.seq in view.reads_outstanding
    if handling is Handling.CSUM_ANSWER:
        assert view.repl is Repl.SYNC_SOURCE
        assert message.offset // BLOCK_SIZE in view.csums_in_flight
    if handling is Handling.FLUSH_FOR_PEER:
        assert view.peer_flushes < MAX_PEER_FLUSHES
