"""A simulated pair in virtual time: the secondary loses power at any step, nothing is lost.

The primary side is the real `TransferLog` (what is durable on the peer, what a
lost link leaves out of sync); the secondary is a model with a volatile page
cache in front of its disk, as the backing file is: DATA lands in the cache
and is acknowledged, FLUSH moves the cache to the disk, and the kernel writes
back parts of the cache whenever it likes. The link is an ordered pair of
queues. Random schedules interleave writes, deliveries, write-backs, flushes
asked by the primary's timer, power losses of the secondary and reconnects
with a bitmap resync. After each resync the secondary's disk must equal the
primary's data: an acknowledged write is never lost without the bitmap
saying so.
"""

from __future__ import annotations

import random
from collections import deque

import pytest

from vigil.replication.completion import TransferLog

BLOCKS = 16


class Secondary:
    def __init__(self) -> None:
        self.cache: dict[int, int] = {}
        self.disk: dict[int, int] = {}

    def receive(self, message: tuple) -> tuple | None:
        kind = message[0]
        if kind == "DATA":
            _, seq, block, value = message
            self.cache[block] = value
            return ("WRITE_ACK", seq)
        if kind == "FLUSH":
            self.disk.update(self.cache)
            self.cache.clear()
            return ("FLUSH_ACK", message[1])
        raise AssertionError(message)

    def writeback(self, rng: random.Random) -> None:
        for block in list(self.cache):
            if rng.random() < 0.5:
                self.disk[block] = self.cache.pop(block)

    def power_loss(self) -> None:
        self.cache.clear()


class Primary:
    def __init__(self) -> None:
        self.data: dict[int, int] = {}
        self.bitmap: set[int] = set()
        self.tlog = TransferLog()
        self.blocks_of: dict[int, int] = {}  # transfer seq -> block
        self.flush_seq = 0
        self.covers: dict[int, int] = {}

    def write(self, block: int, value: int, connected: bool, out: deque) -> None:
        self.data[block] = value
        if not connected:
            self.bitmap.add(block)
            return
        transfer = self.tlog.start(block * 4096, 4096)
        self.blocks_of[transfer.seq] = block
        out.append(("DATA", transfer.seq, block, value))

    def ask_flush(self, out: deque) -> None:
        self.flush_seq += 1
        self.covers[self.flush_seq] = self.tlog.barrier()
        out.append(("FLUSH", self.flush_seq))

    def receive(self, message: tuple, now: float) -> None:
        if message[0] == "WRITE_ACK":
            self.tlog.written(message[1], now)
        else:
            self.tlog.flushed(self.covers.pop(message[1]), now)

    def link_lost(self) -> None:
        for transfer in self.tlog.connection_lost():
            self.bitmap.add(transfer.offset // 4096)
        self.covers.clear()


def run_schedule(seed: int, steps: int = 400) -> int:
    rng = random.Random(seed)
    primary, secondary = Primary(), Secondary()
    to_secondary: deque = deque()
    to_primary: deque = deque()
    connected, now, losses, value = True, 0.0, 0, 0
    for _ in range(steps):
        now += rng.choice((0.01, 0.1, 0.5))
        roll = rng.random()
        if roll < 0.35:
            value += 1
            primary.write(rng.randrange(BLOCKS), value, connected, to_secondary)
        elif roll < 0.6 and to_secondary:
            answer = secondary.receive(to_secondary.popleft())
            if answer is not None:
                to_primary.append(answer)
        elif roll < 0.8 and to_primary:
            primary.receive(to_primary.popleft(), now)
        elif roll < 0.9:
            secondary.writeback(rng)
        elif roll < 0.95 and connected:
            secondary.power_loss()  # the link goes with it
            losses += 1
            to_secondary.clear()
            to_primary.clear()
            primary.link_lost()
            connected = False
        elif not connected:
            # the secondary is back: the handshake exchanges bitmaps and resyncs them
            for block in primary.bitmap:
                secondary.disk[block] = primary.data[block]
            primary.bitmap.clear()
            connected = True
            assert secondary.disk == primary.data, f"seed {seed}: lost writes"
        if connected and primary.tlog.flush_due(now):
            primary.ask_flush(to_secondary)
    return losses


@pytest.mark.parametrize("batch", range(4))
def test_no_acknowledged_write_is_lost_when_the_secondary_loses_power(batch):
    losses = sum(run_schedule(seed) for seed in range(batch * 100, batch * 100 + 100))
    assert losses > 100  # the schedules did lose power, often
