"""Heartbeat 3's message framing: fields, the netstring wire form and the classic text.

A heartbeat message is an ordered list of typed fields. On the wire (UDP)
heartbeat 3.0.6 always uses the netstring form once a message is signed::

    ###\\n
    <len>:(<type>)<name>=<value>,        one netstring per field, in order
    %%%\\n
    <len>:<authnum> <hexdigest>,         the trailer signature (see auth.py)

The classic form (`>>>\\n name=value\\n ... <<<\\n`) is what heartbeat's shell
scripts write into its FIFO; its body without the markers and without the
`auth` field is also what the `auth` field signs. This module is pure: bytes
in, fields out, and back, byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from vigil.errors import VigilError

MSG_START = b"###\n"
MSG_END = b"%%%\n"
CLASSIC_START = b">>>\n"
CLASSIC_END = b"<<<\n"
#: Heartbeat refuses messages of 40000 bytes or more (MAXMSG); UDP cannot carry more anyway.
MAX_DATAGRAM = 65507


class WireError(VigilError):
    """The bytes are not a well-formed heartbeat message (corrupt, truncated, foreign)."""


class FieldType(enum.IntEnum):
    """Field types of cluster-glue's messages (`FT_*`), the digit in `(<type>)`."""

    STRING = 0
    BINARY = 1
    STRUCT = 2  # a nested message, itself in netstring form
    LIST = 3
    COMPRESSED = 4
    UNCOMPRESSED = 5


@dataclass(frozen=True)
class Field:
    """One `name=value` pair; the value is kept as the exact bytes of the wire form."""

    name: str
    value: bytes
    type: FieldType = FieldType.STRING

    def __post_init__(self) -> None:
        raw = self.name.encode("utf-8", "surrogateescape")
        if not raw or b"=" in raw or b"\n" in raw or b"\0" in raw:
            raise WireError(f"bad field name {self.name!r}")

    @classmethod
    def text(cls, name: str, value: str) -> Field:
        return cls(name, value.encode("utf-8", "surrogateescape"), FieldType.STRING)

    @property
    def string(self) -> str:
        return self.value.decode("utf-8", "surrogateescape")

    def netstring_item(self) -> bytes:
        """`(<type>)<name>=<value>`: the payload of this field's netstring."""
        return b"(%d)%s=%s" % (self.type, self.name.encode("utf-8", "surrogateescape"),
                               self.value)

    def classic_line(self) -> bytes:
        """The field as the classic text form writes it (`name=value\\n`)."""
        name = self.name.encode("utf-8", "surrogateescape")
        if self.type is FieldType.STRING:
            if b"\n" in self.value:
                raise WireError(f"field {self.name!r} holds a newline: no classic form")
            return name + b"=" + self.value + b"\n"
        if self.type is FieldType.BINARY:
            return b"(1)" + name + b"=" + base64.b64encode(self.value) + b"\n"
        raise WireError(f"field {self.name!r} of type {self.type.name} has no classic form")


class Message:
    """An ordered, immutable list of fields (names may repeat, as in heartbeat)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[Field] = ()):
        self._fields: tuple[Field, ...] = tuple(fields)

    @property
    def fields(self) -> tuple[Field, ...]:
        return self._fields

    def __iter__(self) -> Iterator[Field]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={f.value[:24]!r}" for f in self._fields)
        return f"Message({shown})"

    def field(self, name: str) -> Field | None:
        """The first field with this name (heartbeat's `ha_msg_value` semantics)."""
        for item in self._fields:
            if item.name == name:
                return item
        return None

    def get(self, name: str, default: str | None = None) -> str | None:
        item = self.field(name)
        return item.string if item is not None else default

    def raw(self, name: str) -> bytes | None:
        item = self.field(name)
        return item.value if item is not None else None

    @property
    def type(self) -> str | None:
        return self.get("t")

    def without(self, name: str) -> Message:
        return Message(f for f in self._fields if f.name != name)

    def with_field(self, item: Field) -> Message:
        return Message((*self._fields, item))

    # -- forms ---------------------------------------------------------------------------
    def netstring_body(self) -> bytes:
        """`###\\n` ... `%%%\\n`: the netstring form without its trailer signature."""
        parts = [MSG_START]
        for item in self._fields:
            payload = item.netstring_item()
            parts += [b"%d:" % len(payload), payload, b","]
        parts.append(MSG_END)
        return b"".join(parts)

    def classic_text(self, skip: str | None = "auth") -> bytes:
        """The classic body: `name=value\\n` per field, without markers (what `auth` signs)."""
        return b"".join(f.classic_line() for f in self._fields if f.name != skip)

    def classic(self) -> bytes:
        """The classic form with its markers, as heartbeat's FIFO and scripts use it."""
        return CLASSIC_START + self.classic_text(skip=None) + CLASSIC_END


@dataclass(frozen=True)
class Frame:
    """A decoded datagram: the fields, the exact signed bytes, and the trailer if any."""

    message: Message
    body: bytes  # from "###\n" through "%%%\n": what the trailer signs
    trailer: bytes | None  # "<authnum> <hexdigest>", without the netstring framing

    def encode(self) -> bytes:
        if self.trailer is None:
            return self.body
        return self.body + netstring(self.trailer)


def netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


def _read_netstring(data: bytes, pos: int, what: str, max_digits: int) -> tuple[bytes, int]:
    """One `<len>:<payload>,` at `pos` (a length of at most `max_digits` digits); returns the
    payload and the position after it."""
    colon = data.find(b":", pos, pos + max_digits + 1)
    if colon < 0:
        raise WireError(f"{what}: no netstring length at byte {pos}")
    digits = data[pos:colon]
    if not digits.isdigit() or not digits.isascii() or (len(digits) > 1 and digits[0:1] == b"0"):
        raise WireError(f"{what}: bad netstring length {digits[:8]!r} at byte {pos}")
    length = int(digits)
    start = colon + 1
    end = start + length
    if end >= len(data) or data[end : end + 1] != b",":
        raise WireError(f"{what}: netstring of {length} bytes at byte {pos} is truncated")
    return data[start:end], end + 1


def parse_item(item: bytes) -> Field:
    """`(<type>)<name>=<value>` -> Field."""
    if len(item) < 5 or item[0:1] != b"(" or item[2:3] != b")":
        raise WireError(f"field {item[:16]!r} has no (type) prefix")
    try:
        kind = FieldType(item[1] - ord("0"))
    except ValueError:
        raise WireError(f"field {item[:16]!r} has an unknown type") from None
    equal = item.find(b"=", 3)
    if equal <= 3:
        raise WireError(f"field {item[:16]!r} has no name=value")
    try:
        name = item[3:equal].decode("utf-8", "surrogateescape")
        return Field(name, item[equal + 1 :], kind)
    except WireError as exc:
        raise WireError(f"field {item[:16]!r}: {exc}") from None


def decode_netstring(data: bytes, limit: int = MAX_DATAGRAM) -> Frame:
    """Parse a netstring-form message of at most `limit` bytes (a datagram, or what a
    compressed one held); anything malformed raises `WireError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError("a datagram is bytes")
    data = bytes(data)
    if len(data) > limit:
        raise WireError(f"message of {len(data)} bytes is too large")
    digits = len(str(limit))
    if not data.startswith(MSG_START):
        raise WireError("not a heartbeat netstring message (no ###)")
    pos = len(MSG_START)
    fields = []
    while not data.startswith(MSG_END, pos):
        if pos >= len(data):
            raise WireError("message ends without %%%")
        item, pos = _read_netstring(data, pos, "field", digits)
        fields.append(parse_item(item))
    pos += len(MSG_END)
    body = data[:pos]
    trailer = None
    if pos < len(data):
        trailer, pos = _read_netstring(data, pos, "signature", digits)
        if pos != len(data):
            raise WireError(f"{len(data) - pos} stray bytes after the signature")
    return Frame(Message(fields), body, trailer)


def decode_classic(data: bytes) -> Message:
    """Parse the classic form (`>>>` ... `<<<`), as scripts feed heartbeat's FIFO."""
    data = bytes(data)
    if not data.startswith(CLASSIC_START):
        raise WireError("not a classic heartbeat message (no >>>)")
    end = data.find(CLASSIC_END, len(CLASSIC_START) - 1)
    if end < 0:
        raise WireError("classic message ends without <<<")
    fields = []
    for line in data[len(CLASSIC_START) : end].split(b"\n"):
        if not line:
            continue
        kind = FieldType.STRING
        if line.startswith(b"(") and line[2:3] == b")":
            try:
                kind = FieldType(line[1] - ord("0"))
            except ValueError:
                raise WireError(f"line {line[:16]!r} has an unknown type") from None
            line = line[3:]
        name, equal, value = line.partition(b"=")
        if not equal or not name:
            raise WireError(f"line {line[:16]!r} is not name=value")
        if kind is FieldType.BINARY:
            try:
                value = base64.b64decode(value, validate=True)
            except binascii.Error:
                raise WireError(f"field {name[:16]!r}: bad base64") from None
        elif kind is not FieldType.STRING:
            raise WireError(f"field {name[:16]!r}: type {kind.name} in classic form")
        try:
            fields.append(Field(name.decode("utf-8", "surrogateescape"), value, kind))
        except WireError as exc:
            raise WireError(f"line {line[:16]!r}: {exc}") from None
    return Message(fields)
