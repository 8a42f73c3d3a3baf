"""When a replicated write completes, by protocol; and what a lost link leaves out of sync.

Protocol A: the local disk has it and it is queued for the peer. B: and the
peer has received it. C (the default): and the peer's disk has it. Flushes
follow the same rule, with the peer's flush in place of its write. When the
peer is gone, a request completes on the local disk alone, and everything the
peer has not confirmed as written is marked out of sync (the transfer log).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Protocol(enum.Enum):
    A = "A"
    B = "B"
    C = "C"

    @classmethod
    def parse(cls, text: str) -> Protocol:
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValueError(f"unknown replication protocol {text!r} (A, B or C)") from None


@dataclass
class Progress:
    """What has happened to one request so far."""

    local_done: bool = False
    queued: bool = False
    received: bool = False
    written: bool = False
    #: Not replicated (no connected peer, or the link dropped while it was in flight).
    local_only: bool = False
    failed: bool = False


def is_complete(protocol: Protocol, progress: Progress) -> bool:
    if progress.failed:
        return True
    if not progress.local_done:
        return False
    if progress.local_only:
        return True
    if protocol is Protocol.A:
        return progress.queued or progress.received or progress.written
    if protocol is Protocol.B:
        return progress.received or progress.written
    return progress.written


def needs_receive_ack(protocol: Protocol) -> bool:
    """Whether the peer sends an ack on receipt (B) besides the one on write (all)."""
    return protocol is Protocol.B


@dataclass
class Transfer:
    seq: int
    offset: int
    length: int
    progress: Progress


class TransferLog:
    """Writes sent to the peer and not yet confirmed as written by it."""

    def __init__(self) -> None:
        self._open: dict[int, Transfer] = {}
        self._next = 1

    def __len__(self) -> int:
        return len(self._open)

    def start(self, offset: int, length: int) -> Transfer:
        transfer = Transfer(self._next, offset, length, Progress())
        self._next += 1
        self._open[transfer.seq] = transfer
        return transfer

    def get(self, seq: int) -> Transfer | None:
        return self._open.get(seq)

    def received(self, seq: int) -> Transfer | None:
        transfer = self._open.get(seq)
        if transfer:
            transfer.progress.received = True
        return transfer

    def written(self, seq: int) -> Transfer | None:
        transfer = self._open.pop(seq, None)
        if transfer:
            transfer.progress.written = True
        return transfer

    def connection_lost(self) -> list[Transfer]:
        """Every unconfirmed write: the caller marks them out of sync and completes them."""
        lost = list(self._open.values())
        for transfer in lost:
            transfer.progress.local_only = True
        self._open.clear()
        return lost
