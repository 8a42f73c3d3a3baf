"""Heartbeat 3's message types as typed values, with symmetric encode and decode.

Every type is registered in `MESSAGE_TYPES` under its `t=` value. A message is
its type's own fields (in the order heartbeat writes them) followed by the
envelope heartbeat adds to every packet (`destuuid`, `src`, `srcuuid`, `seq`,
`hg`, `ts`, `ld`, `ttl`). Fields a type does not know are kept, in order, so
nothing a peer sent is lost. `decode(encode(m)) == m`, and a packet captured
from heartbeat re-encodes to the same bytes.

Number formats follow heartbeat: `seq`, `hg`, `ts`, `dt`, `ackseq` and the
`firstseq` of a NAK are hex; `ttl`, `protocol` and a retransmission request's
`firstseq`/`lastseq` are decimal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from vigil.membership.wire import Field, FieldType, Message, WireError

#: Types whose name starts with this carry no sequence number (never retransmitted).
NOSEQ_PREFIX = "NS_"


@dataclass(frozen=True)
class Codec:
    to_wire: Callable[[Any], bytes]
    from_wire: Callable[[bytes], Any]
    type: FieldType = FieldType.STRING


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _untext(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


#: heartbeat's numbers are at most 64 bits: 16 hex or 20 decimal digits
MAX_DIGITS = 20


def _number(raw: bytes, base: int) -> int:
    text = raw.decode("ascii", "replace")
    if len(text) > MAX_DIGITS:
        raise WireError(f"number of {len(text)} digits {raw[:20]!r}...")
    if not text or not all(c in "0123456789abcdefABCDEF"[: 10 if base == 10 else 22]
                           for c in text):
        raise WireError(f"bad {'hex' if base == 16 else 'decimal'} number {raw[:20]!r}")
    return int(text, base)


def _hex_to_wire(value: int) -> bytes:
    if value < 0:
        raise WireError(f"negative number {value}")
    return b"%x" % value


def _dec_to_wire(value: int) -> bytes:
    return b"%d" % value


TEXT = Codec(_text, _untext)
HEX = Codec(_hex_to_wire, lambda raw: _number(raw, 16))
DEC = Codec(_dec_to_wire, lambda raw: _number(raw, 10))
BINARY = Codec(bytes, bytes, FieldType.BINARY)


@dataclass(frozen=True)
class Spec:
    """One field of a message type: its wire name, attribute and format."""

    wire: str
    attr: str
    codec: Codec = TEXT
    required: bool = False


@dataclass(frozen=True)
class Envelope:
    """What heartbeat adds to every packet it sends (`add_control_msg_fields`)."""

    src: str
    hg: int
    ts: int
    srcuuid: bytes | None = None
    seq: int | None = None  # None for NS_ types
    ld: str | None = None  # load average, only on sequenced packets
    ttl: int | None = None
    destuuid: bytes | None = None


ENVELOPE_SPECS = (
    Spec("destuuid", "destuuid", BINARY),
    Spec("src", "src", TEXT, required=True),
    Spec("srcuuid", "srcuuid", BINARY),
    Spec("seq", "seq", HEX),
    Spec("hg", "hg", HEX),
    Spec("ts", "ts", HEX, required=True),
    Spec("ld", "ld", TEXT),
    Spec("ttl", "ttl", DEC),
)
_ENVELOPE_NAMES = frozenset(s.wire for s in ENVELOPE_SPECS) | {"auth"}


@dataclass(frozen=True)
class HeartbeatMessage:
    """Base of the typed messages. Subclasses declare `TYPE` and `BODY`."""

    TYPE: ClassVar[str] = ""
    #: The type's fields in wire order; `t` is written where `TYPE_AT` says (usually first).
    BODY: ClassVar[tuple[Spec, ...]] = ()
    TYPE_AT: ClassVar[int] = 0

    env: Envelope
    extra: tuple[Field, ...] = ()

    @property
    def type(self) -> str:
        return self.TYPE

    @property
    def sequenced(self) -> bool:
        return not self.type.startswith(NOSEQ_PREFIX)

    def body_fields(self) -> list[Field]:
        fields = []
        for spec in self.BODY:
            value = getattr(self, spec.attr)
            if value is not None:
                fields.append(Field(spec.wire, spec.codec.to_wire(value), spec.codec.type))
        fields.insert(self.TYPE_AT, Field.text("t", self.type))
        return fields

    def to_message(self) -> Message:
        fields = self.body_fields() + list(self.extra)
        for spec in ENVELOPE_SPECS:
            value = getattr(self.env, spec.attr)
            if value is not None:
                fields.append(Field(spec.wire, spec.codec.to_wire(value), spec.codec.type))
        return Message(fields)

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)

    def with_env(self, **changes: Any) -> Any:
        return dataclasses.replace(self, env=dataclasses.replace(self.env, **changes))


#: The registry: `t=` value -> typed message class.
MESSAGE_TYPES: dict[str, type[HeartbeatMessage]] = {}


def register(cls: type[HeartbeatMessage]) -> type[HeartbeatMessage]:
    if cls.TYPE in MESSAGE_TYPES:
        raise ValueError(f"message type {cls.TYPE} registered twice")
    MESSAGE_TYPES[cls.TYPE] = cls
    return cls


@register
@dataclass(frozen=True)
class Status(HeartbeatMessage):
    """The heartbeat itself. `vg_*` fields are vigil's state gossip (heartbeat ignores them)."""

    TYPE: ClassVar[str] = "status"
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("st", "status", required=True),
        Spec("dt", "deadtime_ms", HEX),
        Spec("protocol", "protocol", DEC),
        Spec("vg", "vigil", DEC),
        Spec("vg_phase", "phase"),
        Spec("vg_rsc", "rsc"),
        Spec("vg_groups", "groups"),
        Spec("vg_give", "give"),
        Spec("vg_want", "want"),
        Spec("vg_ping", "ping", DEC),
    )
    status: str = "up"
    deadtime_ms: int | None = None
    protocol: int | None = None
    #: vigil's protocol version; present only in packets from vigil nodes
    vigil: int | None = None
    phase: str | None = None
    #: fingerprint of the sender's haresources (the group list must match)
    rsc: str | None = None
    #: one letter per group, haresources order (see `vigil.ha.state.Hold`)
    groups: str | None = None
    #: one 0/1 per group: groups the sender hands over (standby) / asks for (takeover)
    give: str | None = None
    want: str | None = None
    #: how many ping nodes the sender reaches
    ping: int | None = None


@register
@dataclass(frozen=True)
class Ack(HeartbeatMessage):
    """`NS_ackmsg`: the receiver has every packet of `dest` up to `ackseq`."""

    TYPE: ClassVar[str] = "NS_ackmsg"
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("dest", "dest", required=True), Spec("ackseq", "ackseq", HEX, required=True))
    dest: str = ""
    ackseq: int = 0


@register
@dataclass(frozen=True)
class Rexmit(HeartbeatMessage):
    """`NS_rexmit`: please send packets `firstseq..lastseq` again (decimal, as heartbeat)."""

    TYPE: ClassVar[str] = "NS_rexmit"
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("dest", "dest", required=True), Spec("firstseq", "firstseq", DEC, required=True),
        Spec("lastseq", "lastseq", DEC, required=True))
    dest: str = ""
    firstseq: int = 0
    lastseq: int = 0


@register
@dataclass(frozen=True)
class NakRexmit(HeartbeatMessage):
    """`NS_nak_rexmit`: packet `firstseq` is gone from the sender's history."""

    TYPE: ClassVar[str] = "NS_nak_rexmit"
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("firstseq", "firstseq", HEX, required=True), Spec("dest", "dest"),
        Spec("info", "info"))
    firstseq: int = 0
    dest: str | None = None
    info: str | None = None


@register
@dataclass(frozen=True)
class ReqNodes(HeartbeatMessage):
    """Asks a member for the node list; heartbeat waits for the answer before it starts."""

    TYPE: ClassVar[str] = "reqnodes"
    BODY: ClassVar[tuple[Spec, ...]] = (Spec("dest", "dest", required=True),)
    dest: str = ""


@register
@dataclass(frozen=True)
class RepNodes(HeartbeatMessage):
    """The node list (`"n1 n2 "`, with heartbeat's trailing blank) and deleted nodes."""

    TYPE: ClassVar[str] = "repnodes"
    TYPE_AT: ClassVar[int] = 1
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("dest", "dest", required=True), Spec("nodelist", "nodelist"),
        Spec("delnodelist", "delnodelist"))
    dest: str = ""
    nodelist: str | None = None
    delnodelist: str | None = None


@register
@dataclass(frozen=True)
class Starting(HeartbeatMessage):
    """A node begins resource negotiation; the answer is a `resource` message."""

    TYPE: ClassVar[str] = "starting"


@register
@dataclass(frozen=True)
class Resources(HeartbeatMessage):
    """What the sender holds: `rsc_hold` none|local|foreign|all, and whether it is stable."""

    TYPE: ClassVar[str] = "resource"
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("rsc_hold", "rsc_hold", required=True), Spec("rtype", "rtype"),
        Spec("isstable", "isstable"), Spec("info", "info"))
    rsc_hold: str = "none"
    rtype: str | None = None
    isstable: str | None = None
    info: str | None = None


@register
@dataclass(frozen=True)
class AskResources(HeartbeatMessage):
    """The standby protocol: `info` me (I go standby) | other (I take them) | done."""

    TYPE: ClassVar[str] = "ask_resources"
    BODY: ClassVar[tuple[Spec, ...]] = (Spec("rsc_hold", "rsc_hold"),
                                        Spec("info", "info", required=True))
    rsc_hold: str | None = None
    info: str = "me"


@register
@dataclass(frozen=True)
class HbTakeover(HeartbeatMessage):
    """`hb_takeover`: the sender wants these resources (the receiver goes standby)."""

    TYPE: ClassVar[str] = "hb_takeover"
    BODY: ClassVar[tuple[Spec, ...]] = (Spec("rsc_hold", "rsc_hold"),)
    rsc_hold: str | None = None


@register
@dataclass(frozen=True)
class Shutdone(HeartbeatMessage):
    """The sender released everything and is leaving (`st=dead`)."""

    TYPE: ClassVar[str] = "shutdone"
    BODY: ClassVar[tuple[Spec, ...]] = (Spec("st", "status"),)
    status: str | None = "dead"


@register
@dataclass(frozen=True)
class IpRequest(HeartbeatMessage):
    """Legacy mode: please release the group whose key is `ipaddr`."""

    TYPE: ClassVar[str] = "ip-request"
    BODY: ClassVar[tuple[Spec, ...]] = (Spec("ipaddr", "ipaddr", required=True),)
    ipaddr: str = ""


@register
@dataclass(frozen=True)
class IpRequestResp(HeartbeatMessage):
    """Legacy mode: the group `ipaddr` was released (`weown`, `ok`)."""

    TYPE: ClassVar[str] = "ip-request-resp"
    BODY: ClassVar[tuple[Spec, ...]] = (
        Spec("dest", "dest"), Spec("ipaddr", "ipaddr", required=True), Spec("weown", "weown"),
        Spec("ok", "ok"))
    dest: str | None = None
    ipaddr: str = ""
    weown: str | None = None
    ok: str | None = None


@dataclass(frozen=True)
class Unknown(HeartbeatMessage):
    """A type vigil does not model: kept as its fields, passed on untouched."""

    type_name: str = ""

    @property
    def type(self) -> str:
        return self.type_name

    def body_fields(self) -> list[Field]:
        return [Field.text("t", self.type_name)]


def _convert(spec: Spec, item: Field, what: str) -> Any:
    if item.type is not spec.codec.type:
        raise WireError(f"{what}: field {spec.wire} has type {item.type.name}")
    try:
        return spec.codec.from_wire(item.value)
    except WireError as exc:
        raise WireError(f"{what}: field {spec.wire}: {exc}") from None


def _take(specs: tuple[Spec, ...], message: Message, what: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in specs:
        item = message.field(spec.wire)
        if item is None:
            if spec.required:
                raise WireError(f"{what}: no {spec.wire} field")
            continue
        values[spec.attr] = _convert(spec, item, what)
    return values


def decode(message: Message) -> HeartbeatMessage:
    """A verified `Message` -> its typed form; raises `WireError` if a field is wrong."""
    type_name = message.get("t")
    if not type_name:
        raise WireError("message without a type (t=)")
    what = f"{type_name} message"
    env = Envelope(**{"hg": 0, **_take(ENVELOPE_SPECS, message, what)})
    # node names are case-insensitive (heartbeat compares them so): one spelling from
    # here on, or two spellings of one node would be tracked as two senders
    env = dataclasses.replace(env, src=env.src.lower())
    cls = MESSAGE_TYPES.get(type_name)
    if cls is None:
        extra = tuple(f for f in message if f.name != "t" and f.name not in _ENVELOPE_NAMES)
        return Unknown(env=env, extra=extra, type_name=type_name)
    body = _take(cls.BODY, message, what)
    known = {s.wire for s in cls.BODY} | {"t"} | _ENVELOPE_NAMES
    extra = tuple(f for f in message if f.name not in known)
    if env.seq is None and not type_name.startswith(NOSEQ_PREFIX):
        raise WireError(f"{what}: no seq field")
    return cls(env=env, extra=extra, **body)


def encode(message: HeartbeatMessage) -> Message:
    return message.to_message()
