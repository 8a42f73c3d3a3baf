"""Packet signatures as heartbeat 3 computes them, with the methods of authkeys.

A signed heartbeat packet carries two signatures made with the same method:

* the `auth` field, `<authnum> <hex>`, over the classic text of every other
  field (`name=value\\n`, binary fields base64): heartbeat's `add_msg_auth`;
* the trailer netstring, `<authnum> <hex>`, over the netstring body from
  `###\\n` through `%%%\\n` (which includes the `auth` field): cluster-glue's
  `msg2netstring`.

`authnum` names the key in authkeys; a receiver accepts a packet signed with
any key it lists (so keys can be rolled without a flag day), and signs with
the one `auth N` selects. Methods: `crc` (no secret, detects corruption only),
`md5` and `sha1` (HMAC, heartbeat's own), and the vigil extensions `sha256`
and `sha512` (HMAC; only vigil peers understand them).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vigil.errors import VigilError
from vigil.membership.wire import Field, Frame, Message, WireError, decode_netstring, netstring


class AuthError(WireError):
    """The packet's signature is missing, unknown or wrong: forged or corrupted."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc_digest(key: bytes, data: bytes) -> str:
    """Heartbeat's `crc` method: the CRC-32/POSIX register without the length, lower hex."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ byte) & 0xFF]
    return format(~crc & 0xFFFFFFFF, "x")


def _hmac(name: str) -> Callable[[bytes, bytes], str]:
    def digest(key: bytes, data: bytes) -> str:
        return hmac.new(key, data, name).hexdigest()

    digest.__name__ = f"hmac_{name}"
    return digest


@dataclass(frozen=True)
class AuthMethod:
    """One authkeys method: how it digests, whether it needs a secret, who speaks it."""

    name: str
    digest: Callable[[bytes, bytes], str]
    needs_key: bool
    heartbeat_compatible: bool
    doc: str


#: The methods authkeys may name, by name (the registry; one entry per method).
METHODS: dict[str, AuthMethod] = {
    "crc": AuthMethod("crc", crc_digest, False, True,
                      "CRC only: detects corruption, no protection against forgery"),
    "md5": AuthMethod("md5", _hmac("md5"), True, True, "HMAC-MD5 with the shared secret"),
    "sha1": AuthMethod("sha1", _hmac("sha1"), True, True, "HMAC-SHA1 with the shared secret"),
    "sha256": AuthMethod("sha256", _hmac("sha256"), True, False,
                         "HMAC-SHA256 (vigil extension: heartbeat peers cannot verify it)"),
    "sha512": AuthMethod("sha512", _hmac("sha512"), True, False,
                         "HMAC-SHA512 (vigil extension: heartbeat peers cannot verify it)"),
}


@dataclass(frozen=True)
class AuthKey:
    method: AuthMethod
    secret: bytes = b""

    def token(self, data: bytes) -> str:
        return self.method.digest(self.secret, data)


@dataclass(frozen=True)
class AuthKeys:
    """The keys of authkeys: `sign_with` signs outgoing packets, any key verifies.

    Built from plain values (`AuthKeys.from_pairs(1, {1: ("sha1", "secret")})`)
    so the config layer only has to hand over what the file says.
    """

    sign_with: int
    keys: Mapping[int, AuthKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sign_with not in self.keys:
            raise VigilError(f"authkeys: auth {self.sign_with} names no key")

    @classmethod
    def from_pairs(cls, sign_with: int, pairs: Mapping[int, tuple[str, str]]) -> AuthKeys:
        keys = {}
        for number, (method_name, secret) in pairs.items():
            method = METHODS.get(method_name.lower())
            if method is None:
                known = ", ".join(METHODS)
                raise VigilError(f"authkeys: key {number}: unknown method {method_name!r} "
                                 f"(known: {known})")
            if not 0 <= number <= 15:
                raise VigilError(f"authkeys: key number {number} is not in 0..15")
            if method.needs_key and not secret:
                raise VigilError(f"authkeys: key {number}: {method.name} needs a secret")
            keys[number] = AuthKey(method, secret.encode() if method.needs_key else b"")
        return cls(sign_with, keys)

    @property
    def signer(self) -> AuthKey:
        return self.keys[self.sign_with]

    def token(self, data: bytes) -> bytes:
        """`<authnum> <hex>` for data, with the signing key."""
        return b"%d %s" % (self.sign_with, self.signer.token(data).encode())

    def check(self, data: bytes, token: bytes, what: str) -> int:
        """Verify a `<authnum> <hex>` token; returns the key number that matched."""
        number_text, space, digest = token.partition(b" ")
        if not space or not number_text.isdigit() or not digest:
            raise AuthError(f"{what}: malformed signature {token[:24]!r}")
        number = int(number_text)
        key = self.keys.get(number)
        if key is None:
            raise AuthError(f"{what}: signed with key {number}, which authkeys does not list")
        if not key.method.needs_key and self.signer.method.needs_key:
            # a crc "signature" anyone can compute: listed for a rotation or not, it must
            # not let a packet past an authkeys whose `auth` selects a real secret
            raise AuthError(f"{what}: crc-signed (key {number}) but auth selects "
                            f"{self.signer.method.name}: refused")
        expected = key.token(data).encode()
        if not hmac.compare_digest(expected, digest):
            raise AuthError(f"{what}: bad {key.method.name} signature (key {number})")
        return number


def add_auth_field(message: Message, keys: AuthKeys) -> Message:
    """The message with its `auth` field (none if it has no classic form, as heartbeat)."""
    message = message.without("auth")
    try:
        text = message.classic_text()
    except WireError:
        return message  # heartbeat skips the field for messages with nested fields
    return message.with_field(Field("auth", keys.token(text)))


def sign(message: Message, keys: AuthKeys, auth_field: bool = True) -> bytes:
    """Add the `auth` field (unless the message has no classic form) and the trailer."""
    message = add_auth_field(message, keys) if auth_field else message.without("auth")
    body = message.netstring_body()
    return body + netstring(keys.token(body))


@dataclass(frozen=True)
class Verified:
    """A datagram that passed every check, with the key numbers that signed it."""

    frame: Frame
    trailer_key: int
    field_key: int | None

    @property
    def message(self) -> Message:
        return self.frame.message


def verify(datagram: bytes, keys: AuthKeys) -> Verified:
    """Decode and authenticate a datagram; raises `WireError` (or its `AuthError`)."""
    frame = decode_netstring(datagram)
    if frame.trailer is None:
        raise AuthError("unsigned message (no signature trailer)")
    trailer_key = keys.check(frame.body, frame.trailer, "trailer")
    return Verified(frame, trailer_key, check_auth_field(frame.message, keys))


def check_auth_field(message: Message, keys: AuthKeys) -> int | None:
    """Verify the `auth` field if the message has one; the key number that matched."""
    auth = message.raw("auth")
    if auth is None:
        return None
    return keys.check(message.classic_text(), auth, "auth field")
