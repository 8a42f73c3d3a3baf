"""When a replicated write completes, by protocol; and what a lost link leaves out of sync.

Protocol A: the local disk has it and it is queued for the peer. B: and the
peer has received it. C (the default): and the peer's disk has it. Flushes
follow the same rule, with the peer's flush in place of its write. When the
peer is gone, a request completes on the local disk alone, and everything the
peer has not confirmed as written is marked out of sync (the transfer log).

"Written" on the peer means in its page cache: a power loss there can still
lose it. So, as DRBD's epochs do, a write the peer acknowledged stays in the
log until a flush of the peer's disk that began after it is acknowledged; if
the link is lost before that, it is marked out of sync too and resynced when
the peer returns. The primary asks the peer for such a flush whenever one is
due (`flush_due`), besides the flushes the file system asks for.
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


#: ask the peer for a flush once acknowledged writes are this old, many or big
FLUSH_AFTER_SECONDS = 1.0
FLUSH_AFTER_WRITES = 4096
FLUSH_AFTER_BYTES = 64 << 20


class TransferLog:
    """Writes sent to the peer and not yet durable there (unconfirmed, or unflushed)."""

    def __init__(self) -> None:
        self._open: dict[int, Transfer] = {}
        self._next = 1
        #: acknowledged as written by the peer, no peer flush since: lost with its power
        self._unflushed: dict[int, Transfer] = {}
        self._unflushed_bytes = 0
        self._unflushed_since: float | None = None
        #: the newest barrier asked for and not yet acknowledged (None: none outstanding)
        self._barrier_pending: int | None = None

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

    def written(self, seq: int, now: float = 0.0) -> Transfer | None:
        transfer = self._open.pop(seq, None)
        if transfer:
            transfer.progress.written = True
            self._unflushed[seq] = transfer
            self._unflushed_bytes += transfer.length
            if self._unflushed_since is None:
                self._unflushed_since = now
        return transfer

    @property
    def unflushed(self) -> int:
        """Writes the peer acknowledged that no peer flush covers yet."""
        return len(self._unflushed)

    def barrier(self) -> int:
        """A peer flush is asked for now: it will cover every write sent so far (the peer
        handles messages in order). The number to give `flushed` when it is acknowledged."""
        upto = self._next - 1
        self._barrier_pending = upto
        return upto

    def flushed(self, upto: int, now: float = 0.0) -> None:
        """The peer's disk has every write up to `upto`."""
        for seq in [s for s in self._unflushed if s <= upto]:
            self._unflushed_bytes -= self._unflushed.pop(seq).length
        self._unflushed_since = now if self._unflushed else None
        if self._barrier_pending is not None and self._barrier_pending <= upto:
            self._barrier_pending = None

    def flush_due(self, now: float) -> bool:
        """Whether to ask the peer for a flush (none outstanding, enough is waiting)."""
        if self._barrier_pending is not None or not self._unflushed:
            return False
        return (len(self._unflushed) >= FLUSH_AFTER_WRITES
                or self._unflushed_bytes >= FLUSH_AFTER_BYTES
                or (self._unflushed_since is not None
                    and now - self._unflushed_since >= FLUSH_AFTER_SECONDS))

    def connection_lost(self) -> list[Transfer]:
        """Every write not durable on the peer (unconfirmed, or confirmed but not flushed):
        the caller marks them out of sync and completes the waiting ones."""
        lost = list(self._open.values())
        for transfer in lost:
            transfer.progress.local_only = True
        lost += self._unflushed.values()
        self._open.clear()
        self._unflushed.clear()
        self._unflushed_bytes = 0
        self._unflushed_since = None
        self._barrier_pending = None
        return lost
