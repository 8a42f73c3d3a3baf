"""Datagram <-> typed message, signed and verified with authkeys: the one entry point."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from vigil.membership import messages
from vigil.membership.auth import AuthKeys, Verified, sign, verify
from vigil.membership.messages import HeartbeatMessage


@dataclass(frozen=True)
class Decoded:
    message: HeartbeatMessage
    verified: Verified


#: Verified packets remembered: the same bytes arrive once per medium.
RECENT = 16


class PacketCodec:
    """Signs outgoing and verifies incoming packets; keys can be swapped on reload.

    The copy of a packet that arrives over a second medium has the same bytes:
    its verification is remembered instead of recomputed.
    """

    def __init__(self, keys: AuthKeys):
        self._keys = keys
        self._recent: OrderedDict[bytes, Decoded] = OrderedDict()

    @property
    def keys(self) -> AuthKeys:
        return self._keys

    @keys.setter
    def keys(self, keys: AuthKeys) -> None:
        self._keys = keys
        self._recent.clear()

    def pack(self, message: HeartbeatMessage) -> bytes:
        return sign(messages.encode(message), self.keys)

    def unpack(self, datagram: bytes) -> Decoded:
        """Raises `WireError` (`AuthError` for signatures) for anything not acceptable."""
        datagram = bytes(datagram)
        known = self._recent.get(datagram)
        if known is not None:
            return known
        verified = verify(datagram, self._keys)
        decoded = Decoded(messages.decode(verified.message), verified)
        self._recent[datagram] = decoded
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return decoded
