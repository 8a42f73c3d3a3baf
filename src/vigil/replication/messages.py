"""What a peer's control messages may contain: checked before the node reads a field (pure).

Every field the node uses is checked for type and range here; anything else
is a `ProtocolError`, which drops that connection and nothing more.
"""

from __future__ import annotations

from typing import Any

from vigil.replication.auth import CHALLENGE_SIZE
from vigil.replication.states import Disk, Role
from vigil.replication.wire import ProtocolError

UINT64 = (1 << 64) - 1
#: PARAMS' digest names (empty: not set), which must be the same on both nodes
ALGORITHM_FIELDS = ("verify_alg", "csums_alg", "integrity_alg")
_HEX = frozenset("0123456789abcdefABCDEF")


def _field(fields: dict[str, Any], name: str, kinds: type | tuple[type, ...],
           what: str, required: bool = True) -> Any:
    if name not in fields:
        if required:
            raise ProtocolError(f"{what}: no {name!r}")
        return None
    value = fields[name]
    # bool is an int to Python: never accept one for the other
    if isinstance(value, bool) and kinds is not bool:
        raise ProtocolError(f"{what}: {name!r} is not {_names(kinds)}")
    if not isinstance(value, kinds):
        raise ProtocolError(f"{what}: {name!r} is not {_names(kinds)}")
    return value


def _names(kinds: type | tuple[type, ...]) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(k.__name__ for k in kinds)


def _count(fields: dict[str, Any], name: str, what: str, required: bool = True) -> int | None:
    value: int | None = _field(fields, name, int, what, required)
    if value is not None and not 0 <= value <= UINT64:
        raise ProtocolError(f"{what}: {name!r} out of range")
    return value


def challenge(fields: dict[str, Any]) -> bytes:
    """HELLO's challenge: hex text of at most CHALLENGE_SIZE bytes (empty: no secret)."""
    text = _field(fields, "challenge", str, "HELLO", required=False) or ""
    if len(text) > 2 * CHALLENGE_SIZE or len(text) % 2 or not set(text) <= _HEX:
        raise ProtocolError("HELLO: the challenge is not hex of at most "
                            f"{CHALLENGE_SIZE} bytes")
    return bytes.fromhex(text)


def hello_resource(fields: dict[str, Any]) -> str:
    name: str = _field(fields, "resource", str, "HELLO")
    if len(name) > 255:
        raise ProtocolError("HELLO: resource name too long")
    return name


def generations(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or len(value) != 4 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= UINT64
            for v in value):
        raise ProtocolError(f"{what}: generations must be four unsigned 64-bit numbers")
    return value


def params(fields: dict[str, Any]) -> dict[str, Any]:
    """PARAMS: the peer's view at the handshake, every field the node reads checked."""
    what = "PARAMS"
    generations(fields.get("generations"), what)
    for flag in ("crashed_primary", "primary", "inconsistent", "discard_my_data",
                 "two_primaries"):
        _field(fields, flag, bool, what, required=flag in ("crashed_primary", "primary"))
    _count(fields, "dirty", what)
    _count(fields, "size", what)
    _count(fields, "capacity", what, required=False)
    _field(fields, "grow", bool, what, required=False)
    since = _field(fields, "primary_since", (int, float), what, required=False)
    if since is not None and not 0 <= since <= UINT64:
        raise ProtocolError(f"{what}: 'primary_since' out of range")
    _field(fields, "protocol", str, what)
    host = _field(fields, "host", str, what, required=False)
    if host is not None and len(host) > 255:
        raise ProtocolError(f"{what}: host name too long")
    for name in ALGORITHM_FIELDS:
        alg = _field(fields, name, str, what, required=False)
        if alg is not None and len(alg) > 32:
            raise ProtocolError(f"{what}: {name!r} too long")
    disk(fields, what, required=False)
    features(fields)
    return fields


def features(fields: dict[str, Any]) -> frozenset[str]:
    """PARAMS' `features`: the optional messages the peer understands (older peers: none)."""
    value = fields.get("features", [])
    if not isinstance(value, list) or len(value) > 16 or any(
            not isinstance(name, str) or len(name) > 32 for name in value):
        raise ProtocolError("PARAMS: 'features' is not a list of at most 16 short names")
    return frozenset(value)


def disk(fields: dict[str, Any], what: str, required: bool = True) -> Disk | None:
    value = _field(fields, "disk", str, what, required)
    if value is None:
        return None
    try:
        return Disk(value)
    except ValueError:
        raise ProtocolError(f"{what}: unknown disk state {value[:40]!r}") from None


def role(fields: dict[str, Any], what: str) -> Role | None:
    value = _field(fields, "role", str, what, required=False)
    if value is None:
        return None
    try:
        return Role(value)
    except ValueError:
        raise ProtocolError(f"{what}: unknown role {value[:40]!r}") from None


def state(fields: dict[str, Any]) -> tuple[Role | None, Disk | None, str | None]:
    """STATE: the peer's role and disk changed, or it starts a verify."""
    verify = _field(fields, "verify", str, "STATE", required=False)
    return role(fields, "STATE"), disk(fields, "STATE", required=False), verify


def sync_paused(fields: dict[str, Any]) -> bool | None:
    """STATE's `sync_paused`: the peer's pause-sync flag (None: not said)."""
    value: bool | None = _field(fields, "sync_paused", bool, "STATE", required=False)
    return value


def invalidate_asked(fields: dict[str, Any]) -> bool:
    """STATE's `invalidate`: the peer ran invalidate-remote (this node's data is to go)."""
    return bool(_field(fields, "invalidate", bool, "STATE", required=False))


def skip_initial_sync(fields: dict[str, Any]) -> int | None:
    """STATE's `skip_initial_sync`: the peer ran `new-current-uuid --clear-bitmap` on two
    fresh disks and names its new current generation (None: not said; never 0)."""
    value = _count(fields, "skip_initial_sync", "STATE", required=False)
    if value == 0:
        raise ProtocolError("STATE: 'skip_initial_sync' names no generation")
    return value


def bye_flushed(fields: dict[str, Any]) -> int | None:
    """BYE's `flushed_through`: the peer's disk holds every replicated write up to this
    number (it flushed before saying goodbye). None: not said."""
    return _count(fields, "flushed_through", "BYE", required=False)


def rs_done(fields: dict[str, Any]) -> list[int]:
    return generations(fields.get("generations"), "RS_DONE")


def within(offset: int, length: int, size: int, what: str) -> None:
    """A byte range of the device: inside it, or the peer is not speaking our protocol."""
    if offset < 0 or length < 0 or offset + length > size:
        raise ProtocolError(f"{what}: {length} bytes at {offset} lie outside the device "
                            f"({size} bytes)")
