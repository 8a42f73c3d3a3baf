"""The peer protocol's messages: registered types, symmetric encode/decode (pure).

Every message is an 8-byte header (magic "VG", type, flags, body length, big
endian) and a body. Bulk messages (replicated writes, resync data) carry a
fixed binary prefix and the raw block data; control messages carry JSON, which
keeps the handshake readable in a capture and easy to extend.
"""

from __future__ import annotations

import enum
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

MAGIC = 0x5647
HEADER = struct.Struct("!HBBI")
MAX_BODY = 32 << 20
#: the largest body a peer may send before it has proved the shared secret
MAX_BODY_UNAUTHENTICATED = 4096
#: nesting deeper than this in a control message is refused before parsing
MAX_JSON_DEPTH = 8


#: a received body: the decoder hands out views into its buffer, parsers copy what they keep
Body = bytes | bytearray | memoryview


class ProtocolError(Exception):
    """The peer sent something that is not our protocol (or is corrupt)."""


class T(enum.IntEnum):
    HELLO = 1
    AUTH = 2
    PARAMS = 3
    STATE = 4
    BITMAP = 5
    DATA = 6
    RECV_ACK = 7
    WRITE_ACK = 8
    NEG_ACK = 9
    FLUSH = 10
    FLUSH_ACK = 11
    RS_DATA = 12
    RS_ACK = 13
    RS_DONE = 14
    PING = 15
    PING_ACK = 16
    OV_REQUEST = 17
    OV_REPLY = 18
    OV_DONE = 19
    OUT_OF_SYNC = 20
    BYE = 21
    CSUM_REQUEST = 22
    CSUM_REPLY = 23
    READ_REQUEST = 24
    READ_REPLY = 25
    READ_ERROR = 26
    RS_BATCH = 27
    RS_ACKS = 28


#: Flags of a DATA message.
FLAG_FUA = 0x01
#: the body carries DIGEST_BYTES of the payload's digest (data-integrity-alg)
FLAG_DIGEST = 0x02
#: bytes of a block digest on the wire (verify, csums and data-integrity requests)
DIGEST_BYTES = 16


class Message:
    TYPES: ClassVar[tuple[T, ...]] = ()
    type: T

    def body(self) -> bytes:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Message:  # pragma: no cover
        raise NotImplementedError

    def flags(self) -> int:
        return 0

    def encode(self) -> bytes:
        body = self.body()
        return HEADER.pack(MAGIC, self.type, self.flags(), len(body)) + body


@dataclass
class Control(Message):
    """HELLO, PARAMS, STATE, RS_DONE, OV_DONE, BYE: a JSON object."""

    TYPES: ClassVar[tuple[T, ...]] = (T.HELLO, T.PARAMS, T.STATE, T.RS_DONE, T.OV_DONE, T.BYE)
    type: T
    fields: dict[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps(self.fields, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Control:
        text = bytes(body)
        if _nesting(text) > MAX_JSON_DEPTH:
            raise ProtocolError(f"{kind.name}: JSON nested deeper than {MAX_JSON_DEPTH}")
        try:
            fields = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"{kind.name}: bad JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise ProtocolError(f"{kind.name}: body is not an object")
        return cls(kind, fields)


@dataclass
class Blob(Message):
    """AUTH (challenge or answer) and BITMAP (zlib-compressed)."""

    TYPES: ClassVar[tuple[T, ...]] = (T.AUTH, T.BITMAP)
    type: T
    payload: bytes = b""

    def body(self) -> bytes:
        return self.payload

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Blob:
        return cls(kind, bytes(body))


def bitmap_message(bits: bytes) -> Blob:
    return Blob(T.BITMAP, zlib.compress(bits, 1))


def bitmap_of(message: Blob, size: int | None = None) -> bytes:
    """The bitmap's bytes; never more than `size` (the device's bitmap) are inflated."""
    inflater = zlib.decompressobj()
    try:
        if size is None:
            return inflater.decompress(message.payload)
        bits = inflater.decompress(message.payload, size)
    except zlib.error as exc:
        raise ProtocolError(f"BITMAP: {exc}") from None
    if inflater.unconsumed_tail or len(bits) != size:
        raise ProtocolError(f"BITMAP: not a bitmap of {size} bytes")
    return bits


def _nesting(text: bytes) -> int:
    """How deep brackets nest (strings are skipped): bounded before json sees it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


_DATA = struct.Struct("!QQ")


@dataclass
class Data(Message):
    """DATA (a replicated write, `seq` numbered), RS_DATA (resync, seq 0) and
    READ_REPLY (the blocks a diskless primary asked for, its request's `seq`).

    With data-integrity-alg the payload's digest follows the offset (FLAG_DIGEST).
    """

    TYPES: ClassVar[tuple[T, ...]] = (T.DATA, T.RS_DATA, T.READ_REPLY)
    type: T
    seq: int
    offset: int
    #: a view into the receive buffer when received (no copy of a 1 MiB write)
    payload: bytes | memoryview
    fua: bool = False
    digest: bytes = b""

    def flags(self) -> int:
        return (FLAG_FUA if self.fua else 0) | (FLAG_DIGEST if self.digest else 0)

    def head(self, payload_length: int | None = None) -> bytes:
        """Everything before the payload: a large payload is written after it, uncopied
        (or sent from a file: then `payload` is empty and `payload_length` says its size)."""
        if self.digest and len(self.digest) != DIGEST_BYTES:
            raise ValueError(f"a DATA digest has {DIGEST_BYTES} bytes")
        prefix = _DATA.pack(self.seq, self.offset) + self.digest
        length = len(self.payload) if payload_length is None else payload_length
        return HEADER.pack(MAGIC, self.type, self.flags(), len(prefix) + length) + prefix

    def body(self) -> bytes:
        return _DATA.pack(self.seq, self.offset) + self.digest + self.payload

    def encode(self) -> bytes:
        return b"".join((self.head(), self.payload))

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Data:
        prefix = _DATA.size + (DIGEST_BYTES if flags & FLAG_DIGEST else 0)
        if len(body) < prefix:
            raise ProtocolError(f"{kind.name}: short body")
        seq, offset = _DATA.unpack_from(body)
        digest = bytes(body[_DATA.size:prefix])
        # A body received into its own buffer is not copied again (1 MiB writes).
        payload = memoryview(body)[prefix:] if isinstance(body, bytearray) else bytes(
            body[prefix:])
        return cls(kind, seq, offset, payload, bool(flags & FLAG_FUA), digest)


_SEQ = struct.Struct("!Q")


@dataclass
class Ack(Message):
    """Acks, flushes, pings and a failed remote read: one sequence number."""

    TYPES: ClassVar[tuple[T, ...]] = (T.RECV_ACK, T.WRITE_ACK, T.NEG_ACK, T.FLUSH, T.FLUSH_ACK,
                                      T.PING, T.PING_ACK, T.READ_ERROR)
    type: T
    seq: int = 0

    def body(self) -> bytes:
        return _SEQ.pack(self.seq)

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Ack:
        if len(body) != _SEQ.size:
            raise ProtocolError(f"{kind.name}: body of {len(body)} bytes")
        return cls(kind, _SEQ.unpack(body)[0])


_RANGE = struct.Struct("!QQ")


@dataclass
class Range(Message):
    """RS_ACK (the target wrote this resync range) and OUT_OF_SYNC (mark it)."""

    TYPES: ClassVar[tuple[T, ...]] = (T.RS_ACK, T.OUT_OF_SYNC)
    type: T
    offset: int
    length: int

    def body(self) -> bytes:
        return _RANGE.pack(self.offset, self.length)

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Range:
        if len(body) != _RANGE.size:
            raise ProtocolError(f"{kind.name}: body of {len(body)} bytes")
        return cls(kind, *_RANGE.unpack(body))


_OV = struct.Struct("!QI")


@dataclass
class Verify(Message):
    """OV_REQUEST / CSUM_REQUEST: digests of consecutive blocks from `offset`;
    OV_REPLY / CSUM_REPLY: a mask of the blocks whose digests differ."""

    TYPES: ClassVar[tuple[T, ...]] = (T.OV_REQUEST, T.OV_REPLY, T.CSUM_REQUEST, T.CSUM_REPLY)
    type: T
    offset: int
    count: int
    payload: bytes

    def body(self) -> bytes:
        return _OV.pack(self.offset, self.count) + self.payload

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Verify:
        if len(body) < _OV.size:
            raise ProtocolError(f"{kind.name}: short body")
        offset, count = _OV.unpack_from(body)
        return cls(kind, offset, count, bytes(body[_OV.size:]))


_READ = struct.Struct("!QQI")


@dataclass
class ReadRequest(Message):
    """READ_REQUEST: a diskless primary asks its peer for `length` bytes at `offset`."""

    TYPES: ClassVar[tuple[T, ...]] = (T.READ_REQUEST,)
    type: T
    seq: int
    offset: int
    length: int

    def body(self) -> bytes:
        return _READ.pack(self.seq, self.offset, self.length)

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> ReadRequest:
        if len(body) != _READ.size:
            raise ProtocolError(f"{kind.name}: body of {len(body)} bytes")
        return cls(kind, *_READ.unpack(body))


_COUNT = struct.Struct("!H")
_PIECE = struct.Struct("!QI")
#: ranges in one RS_BATCH or RS_ACKS
MAX_BATCH_RANGES = 256
#: what a peer says it understands in PARAMS' "features"
FEATURE_RS_BATCH = "rs-batch"


@dataclass
class Batch(Message):
    """RS_BATCH: several small resync ranges and their data, one after the other, in one
    message (a 1% resync is thousands of lone 4 KiB blocks); RS_ACKS: the target wrote
    these ranges. Sent only to a peer whose PARAMS name FEATURE_RS_BATCH."""

    TYPES: ClassVar[tuple[T, ...]] = (T.RS_BATCH, T.RS_ACKS)
    type: T
    #: (offset, length) of each range; RS_BATCH's payload holds their data in this order
    ranges: list[tuple[int, int]]
    payload: bytes | memoryview = b""

    def body(self) -> bytes:
        table = b"".join(_PIECE.pack(offset, length) for offset, length in self.ranges)
        return _COUNT.pack(len(self.ranges)) + table + bytes(self.payload)

    @classmethod
    def parse(cls, kind: T, flags: int, body: Body) -> Batch:
        if len(body) < _COUNT.size:
            raise ProtocolError(f"{kind.name}: short body")
        (count,) = _COUNT.unpack_from(body)
        if not 1 <= count <= MAX_BATCH_RANGES:
            raise ProtocolError(f"{kind.name}: {count} ranges (1 to {MAX_BATCH_RANGES})")
        table = _COUNT.size + count * _PIECE.size
        if len(body) < table:
            raise ProtocolError(f"{kind.name}: short body")
        ranges = [_PIECE.unpack_from(body, _COUNT.size + i * _PIECE.size) for i in range(count)]
        carried = len(body) - table
        if any(length == 0 for _, length in ranges):
            raise ProtocolError(f"{kind.name}: an empty range")
        if kind is T.RS_ACKS and carried:
            raise ProtocolError("RS_ACKS: carries data")
        if kind is T.RS_BATCH and sum(length for _, length in ranges) != carried:
            raise ProtocolError(f"RS_BATCH: {carried} bytes of data for ranges of "
                                f"{sum(length for _, length in ranges)}")
        payload = memoryview(body)[table:] if isinstance(body, bytearray) else bytes(
            body[table:])
        return cls(kind, ranges, payload)


REGISTRY: dict[T, type[Message]] = {
    kind: cls for cls in (Control, Blob, Data, Ack, Range, Verify, ReadRequest, Batch)
    for kind in cls.TYPES
}


def decode(kind: int, flags: int, body: Body) -> Message:
    try:
        mtype = T(kind)
    except ValueError:
        raise ProtocolError(f"unknown message type {kind}") from None
    return REGISTRY[mtype].parse(mtype, flags, body)


class Decoder:
    """Turns a byte stream into messages; keeps a partial message for the next feed."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Message]:
        buffer = self._buffer
        buffer += data
        position = 0
        try:
            while len(buffer) - position >= HEADER.size:
                magic, kind, flags, length = HEADER.unpack_from(buffer, position)
                if magic != MAGIC:
                    raise ProtocolError(f"bad magic {magic:#06x}")
                if length > MAX_BODY:
                    raise ProtocolError(f"message of {length} bytes is too large")
                end = position + HEADER.size + length
                if len(buffer) < end:
                    break
                body = memoryview(buffer)[position + HEADER.size:end]
                try:
                    message = decode(kind, flags, body)
                finally:
                    body.release()
                position = end
                yield message
        finally:
            if position:
                del buffer[:position]

    @property
    def pending(self) -> int:
        return len(self._buffer)
