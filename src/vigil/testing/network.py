"""An in-memory datagram network with a virtual clock, for simulating clusters.

Every node is a name with a receive callback. `send` delivers a copy to each
addressee after a random delay, unless the packet is lost, the pair is
partitioned or a node is down; it may also be duplicated. All randomness comes
from one seeded `random.Random`, so a failing schedule replays exactly.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.testing.clock import FakeClock

Receiver = Callable[[str, bytes], None]  # (sender, payload)


class Simulator:
    """Timed callbacks run in order on a FakeClock: thousands of virtual seconds in ms."""

    def __init__(self, clock: FakeClock | None = None):
        self.clock = clock or FakeClock()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.clock.now()

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (max(when, self.clock.now()), next(self._order), callback))

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.call_at(self.clock.now() + delay, callback)

    def run_until(self, when: float) -> None:
        """Run every callback due up to `when`, then leave the clock at `when`."""
        while self._queue and self._queue[0][0] <= when:
            due, _, callback = heapq.heappop(self._queue)
            self.clock.set(due)
            callback()
        self.clock.set(when)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.clock.now() + seconds)

    def pending(self) -> int:
        return len(self._queue)


@dataclass
class Delivery:
    """One packet as it crossed the network (kept for assertions)."""

    sent: float
    delivered: float | None
    sender: str
    receiver: str
    size: int
    fate: str  # "delivered", "lost", "partitioned", "down", "duplicate"


@dataclass
class LossyNetwork:
    """Nodes exchanging datagrams with loss, delay, duplication and partitions."""

    simulator: Simulator
    seed: int = 0
    loss: float = 0.0
    duplicate: float = 0.0
    min_delay: float = 0.0001
    max_delay: float = 0.001
    record: bool = False
    log: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self._receivers: dict[str, Receiver] = {}
        self._down: set[str] = set()
        self._cut: set[frozenset[str]] = set()
        self.counters = {"sent": 0, "delivered": 0, "lost": 0, "partitioned": 0,
                         "down": 0, "duplicated": 0}

    def attach(self, node: str, receiver: Receiver) -> None:
        self._receivers[node] = receiver

    def nodes(self) -> list[str]:
        return list(self._receivers)

    # -- faults -------------------------------------------------------------------------
    def partition(self, a: str, b: str) -> None:
        self._cut.add(frozenset((a, b)))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Heal one pair, or every partition when called without arguments."""
        if a is None or b is None:
            self._cut.clear()
        else:
            self._cut.discard(frozenset((a, b)))

    def is_partitioned(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._cut

    def set_down(self, node: str, down: bool = True) -> None:
        """A down node neither sends nor receives (its cables are out)."""
        if down:
            self._down.add(node)
        else:
            self._down.discard(node)

    # -- traffic ------------------------------------------------------------------------
    def send(self, sender: str, payload: bytes, to: str | None = None) -> None:
        """Send to one node, or to every other node when `to` is None (broadcast)."""
        self.counters["sent"] += 1
        receivers = [to] if to is not None else [n for n in self._receivers if n != sender]
        for receiver in receivers:
            self._send_one(sender, receiver, payload)

    def _send_one(self, sender: str, receiver: str, payload: bytes) -> None:
        now = self.simulator.now()
        if sender in self._down or receiver in self._down:
            self._note(now, None, sender, receiver, payload, "down")
            return
        if frozenset((sender, receiver)) in self._cut:
            self._note(now, None, sender, receiver, payload, "partitioned")
            return
        copies = 1
        if self.random.random() < self.duplicate:
            copies = 2
            self.counters["duplicated"] += 1
        for _ in range(copies):
            if self.random.random() < self.loss:
                self._note(now, None, sender, receiver, payload, "lost")
                continue
            delay = self.random.uniform(self.min_delay, self.max_delay)
            self.simulator.call_later(delay, self._deliverer(now, sender, receiver, payload))

    def _deliverer(self, sent: float, sender: str, receiver: str, payload: bytes
                   ) -> Callable[[], None]:
        def deliver() -> None:
            # A partition or crash that happened in flight still stops the packet.
            if receiver in self._down or frozenset((sender, receiver)) in self._cut:
                self._note(sent, None, sender, receiver, payload, "partitioned")
                return
            handler = self._receivers.get(receiver)
            if handler is None:
                return
            self._note(sent, self.simulator.now(), sender, receiver, payload, "delivered")
            handler(sender, payload)

        return deliver

    def _note(self, sent: float, delivered: float | None, sender: str, receiver: str,
              payload: bytes, fate: str) -> None:
        self.counters[fate] = self.counters.get(fate, 0) + 1
        if self.record:
            self.log.append(Delivery(sent, delivered, sender, receiver, len(payload), fate))
