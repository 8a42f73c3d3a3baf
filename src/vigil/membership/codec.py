"""Datagram <-> typed message, signed and verified with authkeys: the one entry point."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.membership import messages
from vigil.membership.auth import AuthKeys, Verified, sign, verify
from vigil.membership.messages import HeartbeatMessage


@dataclass(frozen=True)
class Decoded:
    message: HeartbeatMessage
    verified: Verified


class PacketCodec:
    """Signs outgoing and verifies incoming packets; keys can be swapped on reload."""

    def __init__(self, keys: AuthKeys):
        self.keys = keys

    def pack(self, message: HeartbeatMessage) -> bytes:
        return sign(messages.encode(message), self.keys)

    def unpack(self, datagram: bytes) -> Decoded:
        """Raises `WireError` (`AuthError` for signatures) for anything not acceptable."""
        verified = verify(datagram, self.keys)
        return Decoded(messages.decode(verified.message), verified)
