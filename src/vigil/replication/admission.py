"""Whether a message from the connected peer may be acted on, and how (pure).

The node's receive path asks `admit` first: every range must lie inside the
device, every message must fit this node's role and replication state, and
every answer must match a question this node asked. Anything else is a
`ProtocolError`, which drops that connection and nothing more; the node then
does the I/O that the returned `Handling` names. Keeping these rules here lets
them be tested over every message kind and every state without a disk or a
socket.
"""

from __future__ import annotations

import enum
from collections.abc import Container
from dataclasses import dataclass

from vigil.replication import messages, wire
from vigil.replication.geometry import BLOCK_SIZE
from vigil.replication.states import Repl, Role
from vigil.replication.wire import ProtocolError

#: Bytes of one block's digest in a verify or csums request.
DIGEST_BYTES = wire.DIGEST_BYTES
#: Blocks one verify or csums request may ask about: the requester sends at most this many,
#: and the answer is computed on the event loop, so a larger one is refused.
VERIFY_CHUNK_BLOCKS = 256
#: The most a diskless primary may ask for in one remote read (FUSE asks for far less).
MAX_REMOTE_READ = 1 << 20
#: Flushes the peer may have outstanding here at once (each one occupies a worker thread).
MAX_PEER_FLUSHES = 64


class Handling(enum.Enum):
    """What the node does with an admitted message."""

    WRITE = "write the peer's replicated write, then acknowledge it"
    ACKNOWLEDGED = "progress of one of this node's replicated writes"
    FLUSH_FOR_PEER = "flush the backing disk, then answer FLUSH_ACK"
    FLUSHED = "the peer flushed what this node asked it to"
    RESYNC_WRITE = "write resync data as the sync target"
    RESYNC_ACKED = "the target holds a range this node resynced"
    RESYNC_WRITE_BATCH = "write a batch of resync ranges as the sync target"
    RESYNC_ACKED_BATCH = "the target holds these ranges this node resynced"
    RESYNC_DONE = "the sync source finished"
    ANSWER_PING = "answer a keepalive"
    NOTHING = "nothing to do"
    VERIFY_BLOCKS = "compare digests with this node's blocks and answer"
    VERIFY_ANSWER = "record the peer's verdict on blocks this node asked about"
    VERIFY_DONE = "the verify source finished"
    CSUM_BLOCKS = "compare the sync source's digests with this node's blocks and answer"
    CSUM_ANSWER = "send the blocks the sync target's digests say differ"
    MARK_OUT_OF_SYNC = "record a range as out of sync"
    READ_FOR_PEER = "read blocks for the diskless primary peer and answer"
    READ_ANSWERED = "the answer to one of this diskless node's remote reads"
    PEER_STATE = "the peer's role, disk or verify state changed"
    GOODBYE = "the peer disconnects"


@dataclass(frozen=True)
class View:
    """What this node's state says about which messages may arrive now."""

    size: int
    role: Role
    repl: Repl
    two_primaries: bool = False
    #: verify requests this node sent and the peer has not answered
    verify_outstanding: int = 0
    #: first blocks of the resync ranges this node sent and the target has not acknowledged
    resync_in_flight: Container[int] = frozenset()
    #: FLUSH requests from the peer this node is still working on
    peer_flushes: int = 0
    #: first blocks of the csums requests this node sent and the target has not answered
    csums_in_flight: Container[int] = frozenset()
    #: the peer is a diskless primary: its reads come here
    serves_peer_reads: bool = False
    #: sequence numbers of this (diskless) node's remote reads the peer has not answered
    reads_outstanding: Container[int] = frozenset()


def admit(message: wire.Message, view: View) -> Handling:
    """The handling of `message` in state `view`, or ProtocolError saying why it is refused."""
    kind = message.type
    rule = _RULES.get(kind)
    if rule is None:
        raise ProtocolError(f"unexpected {kind.name} while connected")
    return rule(message, view)


def _data(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Data)
    messages.within(message.offset, len(message.payload), view.size, "DATA")
    if view.role is Role.PRIMARY and not view.two_primaries:
        raise ProtocolError("DATA from the peer while this node is Primary")
    return Handling.WRITE


def _ack(message: wire.Message, view: View) -> Handling:
    return Handling.ACKNOWLEDGED


def _flush(message: wire.Message, view: View) -> Handling:
    if view.peer_flushes >= MAX_PEER_FLUSHES:
        raise ProtocolError(f"FLUSH: the peer already has {view.peer_flushes} flushes "
                            "outstanding here")
    return Handling.FLUSH_FOR_PEER


def _flush_ack(message: wire.Message, view: View) -> Handling:
    return Handling.FLUSHED


def _rs_data(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Data)
    messages.within(message.offset, len(message.payload), view.size, "RS_DATA")
    if view.repl is not Repl.SYNC_TARGET:
        raise ProtocolError(f"RS_DATA while {view.repl.value}, not SyncTarget")
    if message.offset % BLOCK_SIZE:
        raise ProtocolError("RS_DATA: does not start on a block")
    return Handling.RESYNC_WRITE


def _ascending_blocks(message: wire.Batch, view: View) -> None:
    """A batch's ranges: inside the device, each on a block, in order, none overlapping."""
    what = message.type.name
    end = 0
    for offset, length in message.ranges:
        messages.within(offset, length, view.size, what)
        if offset % BLOCK_SIZE:
            raise ProtocolError(f"{what}: a range at {offset} does not start on a block")
        if offset < end:
            raise ProtocolError(f"{what}: ranges out of order or overlapping at {offset}")
        end = offset + length


def _rs_batch(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Batch)
    if view.repl is not Repl.SYNC_TARGET:
        raise ProtocolError(f"RS_BATCH while {view.repl.value}, not SyncTarget")
    _ascending_blocks(message, view)
    return Handling.RESYNC_WRITE_BATCH


def _rs_acks(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Batch)
    if view.repl is not Repl.SYNC_SOURCE:
        raise ProtocolError(f"RS_ACKS while {view.repl.value}, not SyncSource")
    _ascending_blocks(message, view)
    for offset, _ in message.ranges:
        if offset // BLOCK_SIZE not in view.resync_in_flight:
            raise ProtocolError(f"RS_ACKS at {offset}: no resync data was sent there")
    return Handling.RESYNC_ACKED_BATCH


def _rs_ack(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Range)
    messages.within(message.offset, message.length, view.size, "RS_ACK")
    if view.repl is not Repl.SYNC_SOURCE:
        raise ProtocolError(f"RS_ACK while {view.repl.value}, not SyncSource")
    if message.offset % BLOCK_SIZE or message.offset // BLOCK_SIZE not in view.resync_in_flight:
        raise ProtocolError(f"RS_ACK at {message.offset}: no resync data was sent there")
    return Handling.RESYNC_ACKED


def _rs_done(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Control)
    messages.rs_done(message.fields)
    if view.repl is not Repl.SYNC_TARGET:
        raise ProtocolError(f"RS_DONE while {view.repl.value}, not SyncTarget")
    return Handling.RESYNC_DONE


def _ping(message: wire.Message, view: View) -> Handling:
    return Handling.ANSWER_PING


def _nothing(message: wire.Message, view: View) -> Handling:
    return Handling.NOTHING


def _ov_request(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Verify)
    messages.within(message.offset, message.count * BLOCK_SIZE, view.size, "OV_REQUEST")
    if view.repl not in (Repl.ESTABLISHED, Repl.VERIFY_T, Repl.VERIFY_S):
        # both nodes may start a verify at once: each then answers the other's requests
        raise ProtocolError(f"OV_REQUEST while {view.repl.value}")
    _digests_fit("OV_REQUEST", message)
    return Handling.VERIFY_BLOCKS


def _digests_fit(what: str, message: wire.Verify) -> None:
    """A digest request: a bounded number of whole blocks, one digest each."""
    if not 0 < message.count <= VERIFY_CHUNK_BLOCKS:
        raise ProtocolError(f"{what}: {message.count} blocks, more than "
                            f"{VERIFY_CHUNK_BLOCKS} or none")
    if message.offset % BLOCK_SIZE or len(message.payload) != message.count * DIGEST_BYTES:
        raise ProtocolError(f"{what}: digests do not match its block count")


def _ov_reply(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Verify)
    messages.within(message.offset, message.count * BLOCK_SIZE, view.size, "OV_REPLY")
    if message.offset % BLOCK_SIZE or len(message.payload) < (message.count + 7) // 8:
        raise ProtocolError("OV_REPLY: mask shorter than its block count")
    if view.repl is not Repl.VERIFY_S or view.verify_outstanding <= 0:
        raise ProtocolError("OV_REPLY without a verify request outstanding")
    return Handling.VERIFY_ANSWER


def _ov_done(message: wire.Message, view: View) -> Handling:
    if view.repl is Repl.VERIFY_S:
        return Handling.NOTHING  # the peer's verify of this node ended; this node's goes on
    if view.repl is not Repl.VERIFY_T:
        raise ProtocolError(f"OV_DONE while {view.repl.value}, not VerifyT")
    return Handling.VERIFY_DONE


def _csum_request(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Verify)
    messages.within(message.offset, message.count * BLOCK_SIZE, view.size, "CSUM_REQUEST")
    if view.repl is not Repl.SYNC_TARGET:
        raise ProtocolError(f"CSUM_REQUEST while {view.repl.value}, not SyncTarget")
    _digests_fit("CSUM_REQUEST", message)
    return Handling.CSUM_BLOCKS


def _csum_reply(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Verify)
    messages.within(message.offset, message.count * BLOCK_SIZE, view.size, "CSUM_REPLY")
    if view.repl is not Repl.SYNC_SOURCE:
        raise ProtocolError(f"CSUM_REPLY while {view.repl.value}, not SyncSource")
    if message.offset % BLOCK_SIZE or message.offset // BLOCK_SIZE not in view.csums_in_flight:
        raise ProtocolError(f"CSUM_REPLY at {message.offset}: no digests were sent there")
    if len(message.payload) != (message.count + 7) // 8:
        raise ProtocolError("CSUM_REPLY: the mask does not match its block count")
    return Handling.CSUM_ANSWER


def _out_of_sync(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Range)
    messages.within(message.offset, message.length, view.size, "OUT_OF_SYNC")
    return Handling.MARK_OUT_OF_SYNC


def _read_request(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.ReadRequest)
    if not 0 < message.length <= MAX_REMOTE_READ:
        raise ProtocolError(f"READ_REQUEST of {message.length} bytes (at most "
                            f"{MAX_REMOTE_READ}, at least 1)")
    messages.within(message.offset, message.length, view.size, "READ_REQUEST")
    if not view.serves_peer_reads:
        raise ProtocolError("READ_REQUEST: the peer is not a diskless primary reading here")
    return Handling.READ_FOR_PEER


def _read_answer(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, (wire.Data, wire.Ack))
    if message.seq not in view.reads_outstanding:
        raise ProtocolError(f"{message.type.name} {message.seq}: no such read was asked")
    if isinstance(message, wire.Data):
        messages.within(message.offset, len(message.payload), view.size, "READ_REPLY")
    return Handling.READ_ANSWERED


def _state(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Control)
    messages.state(message.fields)
    messages.sync_paused(message.fields)
    messages.invalidate_asked(message.fields)
    messages.skip_initial_sync(message.fields)
    return Handling.PEER_STATE


def _bye(message: wire.Message, view: View) -> Handling:
    assert isinstance(message, wire.Control)
    messages.bye_flushed(message.fields)
    return Handling.GOODBYE


_RULES = {
    wire.T.DATA: _data,
    wire.T.WRITE_ACK: _ack, wire.T.RECV_ACK: _ack, wire.T.NEG_ACK: _ack,
    wire.T.FLUSH: _flush,
    wire.T.FLUSH_ACK: _flush_ack,
    wire.T.RS_DATA: _rs_data,
    wire.T.RS_BATCH: _rs_batch,
    wire.T.RS_ACKS: _rs_acks,
    wire.T.RS_ACK: _rs_ack,
    wire.T.RS_DONE: _rs_done,
    wire.T.PING: _ping,
    wire.T.PING_ACK: _nothing,
    wire.T.OV_REQUEST: _ov_request,
    wire.T.OV_REPLY: _ov_reply,
    wire.T.OV_DONE: _ov_done,
    wire.T.CSUM_REQUEST: _csum_request,
    wire.T.CSUM_REPLY: _csum_reply,
    wire.T.OUT_OF_SYNC: _out_of_sync,
    wire.T.STATE: _state,
    wire.T.BYE: _bye,
    wire.T.READ_REQUEST: _read_request,
    wire.T.READ_REPLY: _read_answer,
    wire.T.READ_ERROR: _read_answer,
}
