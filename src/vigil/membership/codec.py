"""Datagram <-> typed message, signed and verified with authkeys: the one entry point."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from vigil.membership import compression, messages
from vigil.membership.auth import (
    AuthKeys,
    Verified,
    add_auth_field,
    check_auth_field,
    sign,
    verify,
)
from vigil.membership.messages import HeartbeatMessage
from vigil.membership.wire import Message, WireError


@dataclass(frozen=True)
class Compressor:
    """ha.cf's `compression` and `compression_threshold` (bytes), when vigil compresses."""

    algorithm: str
    threshold: int

    def __post_init__(self) -> None:
        if self.algorithm not in compression.ALGORITHMS:
            raise ValueError(f"unknown compression {self.algorithm!r}")

    def wants(self, message: Message) -> bool:
        """Longer than the threshold as heartbeat measures it (`get_stringlen`, msgfmt classic:
        the classic form and its NUL)?"""
        try:
            size = len(message.classic()) + 1
        except WireError:
            size = len(message.netstring_body())
        return size > self.threshold


@dataclass(frozen=True)
class Decoded:
    message: HeartbeatMessage
    verified: Verified
    #: the algorithm the peer compressed the message with, if it did
    compressed: str | None = None


#: Verified packets remembered: the same bytes arrive once per medium.
RECENT = 16


class PacketCodec:
    """Signs outgoing and verifies incoming packets; keys can be swapped on reload.

    The copy of a packet that arrives over a second medium has the same bytes:
    its verification is remembered instead of recomputed. A compressed packet
    is opened only after its trailer signature has been checked, so a stranger
    cannot make this node inflate anything.
    """

    def __init__(self, keys: AuthKeys, compressor: Compressor | None = None):
        self._keys = keys
        self.compressor = compressor
        self._recent: OrderedDict[bytes, Decoded] = OrderedDict()

    @property
    def keys(self) -> AuthKeys:
        return self._keys

    @keys.setter
    def keys(self, keys: AuthKeys) -> None:
        self._keys = keys
        self._recent.clear()

    def pack(self, message: HeartbeatMessage) -> bytes:
        original = add_auth_field(messages.encode(message), self.keys)
        compressor = self.compressor
        if compressor is not None and compressor.wants(original):
            # heartbeat's traditional compression: the original, its auth field inside,
            # packed into a two-field message that only the trailer signs
            return sign(compression.compress(original, compressor.algorithm), self.keys,
                        auth_field=False)
        return sign(original, self.keys)

    def unpack(self, datagram: bytes) -> Decoded:
        """Raises `WireError` (`AuthError` for signatures, `CompressionError` for a compressed
        message that cannot be opened) for anything not acceptable."""
        datagram = bytes(datagram)
        known = self._recent.get(datagram)
        if known is not None:
            return known
        verified = verify(datagram, self._keys)
        message: Message = verified.message
        algorithm = None
        if compression.is_compressed(message):
            message, algorithm = compression.expand(message)
            verified = replace(verified, field_key=check_auth_field(message, self._keys))
        decoded = Decoded(messages.decode(message), verified, algorithm)
        self._recent[datagram] = decoded
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return decoded
