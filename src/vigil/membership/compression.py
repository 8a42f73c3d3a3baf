"""Heartbeat's compressed messages: a whole message packed into one field, and back.

With `traditional_compression on`, heartbeat 3.0.6 (cluster-glue's
`cl_compressmsg`) replaces every message whose wire form is longer than
`compression_threshold` KB by a message of two fields::

    (1)_compressed_payload=<the compressed form of the original message>
    (0)_compression_algorithm=zlib          (or bz2)

signed with the trailer only. The original is the classic form with a final
NUL (`>>>\\n name=value\\n ... <<<\\n\\0`, its `auth` field inside) under
`msgfmt classic`, the netstring form without a trailer under `msgfmt
netstring`. `zlib` is zlib's `compress()` stream, `bz2` a bzip2 stream with
100 KB blocks; Python's compressors make the same bytes as heartbeat's
plugins (the captures in tests/unit/membership/data show it). heartbeat
itself does not require the `auth` field inside: the trailer covers the
payload.

A peer's packet is hostile: the payload is only inflated after the trailer
signature has been checked, never beyond `MAX_EXPANDED` bytes (a zip bomb
stops there, cheaply), and a compressed message inside a compressed one is
refused (heartbeat never sends one). Field-level compression (`FT_COMPRESS`
fields, made by `ha_msg_addstruct_compress` for the CRM's big structs) is
never opened by heartbeat itself, only by its API clients: vigil keeps such
fields as opaque bytes too.
"""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vigil.membership.wire import (
    CLASSIC_END,
    CLASSIC_START,
    MSG_START,
    Field,
    FieldType,
    Message,
    WireError,
    decode_classic,
    decode_netstring,
)

PAYLOAD_FIELD = "_compressed_payload"
ALGORITHM_FIELD = "_compression_algorithm"
#: cluster-glue's MAXMSG (256 KB): no message heartbeat sends in haresources mode comes near it
MAX_EXPANDED = 256 * 1024


class CompressionError(WireError):
    """A compressed message that cannot be opened: unknown method, corrupt, too big, nested."""


class _Inflater(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


@dataclass(frozen=True)
class Algorithm:
    """One of heartbeat's compression plugins, by the name it writes on the wire."""

    name: str
    compress: Callable[[bytes], bytes]
    inflater: Callable[[], _Inflater]


#: heartbeat 3.0.6's plugins (/usr/lib/heartbeat/plugins/compress/{zlib,bz2}.so)
ALGORITHMS: dict[str, Algorithm] = {
    "zlib": Algorithm("zlib", zlib.compress, zlib.decompressobj),
    "bz2": Algorithm("bz2", lambda data: bz2.compress(data, 1), bz2.BZ2Decompressor),
}


def inflate(name: str, data: bytes, limit: int = MAX_EXPANDED) -> bytes:
    """Decompress one payload, refusing anything but one whole stream of at most `limit` bytes."""
    algorithm = ALGORITHMS.get(name)
    if algorithm is None:
        raise CompressionError(f"unknown compression {name[:16]!r} (known: "
                               f"{', '.join(ALGORITHMS)})")
    inflater = algorithm.inflater()
    try:
        out = inflater.decompress(data, limit + 1)
    except (zlib.error, OSError, ValueError, EOFError) as exc:
        raise CompressionError(f"corrupt {name} payload: {exc}") from None
    if len(out) > limit:
        raise CompressionError(f"{name} payload of {len(data)} bytes expands beyond "
                               f"{limit} bytes")
    if not inflater.eof:
        raise CompressionError(f"truncated {name} payload ({len(data)} bytes)")
    if inflater.unused_data:
        raise CompressionError(f"{len(inflater.unused_data)} stray bytes after the "
                               f"{name} stream")
    return out


def is_compressed(message: Message) -> bool:
    """Heartbeat's test (`is_compressed_msg`): the message has a payload field."""
    return message.field(PAYLOAD_FIELD) is not None


def expand(message: Message, limit: int = MAX_EXPANDED) -> tuple[Message, str]:
    """The original message inside a compressed one, and the algorithm's name."""
    payload = message.field(PAYLOAD_FIELD)
    if payload is None:
        raise CompressionError("not a compressed message")
    if payload.type is not FieldType.BINARY:
        raise CompressionError(f"{PAYLOAD_FIELD} has type {payload.type.name}, not BINARY")
    name = message.get(ALGORITHM_FIELD)
    if name is None:
        raise CompressionError(f"compressed message without {ALGORITHM_FIELD}")
    raw = inflate(name, payload.value, limit)
    try:
        original = parse_original(raw, limit)
    except CompressionError:
        raise
    except WireError as exc:
        raise CompressionError(f"inside the {name} payload: {exc}") from None
    if is_compressed(original):
        raise CompressionError("a compressed message inside a compressed message")
    return original, name


def parse_original(raw: bytes, limit: int = MAX_EXPANDED) -> Message:
    """The decompressed bytes -> fields: the classic form (+ NUL) or an unsigned netstring."""
    if raw.startswith(MSG_START):
        frame = decode_netstring(raw, limit)
        if frame.trailer is not None:
            raise CompressionError("a signature trailer inside a compressed message")
        return frame.message
    if raw.startswith(CLASSIC_START):
        text = raw[:-1] if raw.endswith(b"\0") else raw
        if not text.endswith(CLASSIC_END):
            raise CompressionError("the compressed classic message does not end with <<<")
        if text.find(CLASSIC_END, len(CLASSIC_START) - 1) != len(text) - len(CLASSIC_END):
            raise CompressionError("stray lines after <<< inside the compressed message")
        return decode_classic(text)
    raise CompressionError(f"the compressed payload holds no message ({raw[:8]!r})")


def compress(message: Message, name: str, netstring: bool = False) -> Message:
    """`message` (with its `auth` field) packed as heartbeat packs it; sign it trailer-only.

    The classic form is used unless `netstring` (heartbeat's `msgfmt netstring`)
    or the message has fields the classic form cannot carry (heartbeat's
    `must_use_netstring`).
    """
    try:
        original = message.netstring_body() if netstring else message.classic() + b"\0"
    except WireError:
        original = message.netstring_body()
    packed = ALGORITHMS[name].compress(original)
    return Message([Field(PAYLOAD_FIELD, packed, FieldType.BINARY),
                    Field.text(ALGORITHM_FIELD, name)])
