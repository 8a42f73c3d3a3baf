"""The packets we sent, kept to answer retransmission requests as heartbeat does.

The last 500 sequenced packets are kept as the exact bytes sent. A request
(`NS_rexmit firstseq..lastseq`) is answered by sending those bytes again,
except for numbers the requester already acknowledged, numbers re-sent less
than `max_rexmit_delay - 10 ms` ago (several nodes may ask at once), and at
most 50 per request; numbers no longer kept are NAKed (`NS_nak_rexmit`).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

#: Packets kept for retransmission (heartbeat's MAXMSGHIST).
HISTORY_SIZE = 500
#: Packets re-sent at most per request (heartbeat's MAX_REXMIT_BATCH).
MAX_REXMIT_BATCH = 50


@dataclass
class _Sent:
    datagram: bytes
    last_rexmit: float | None = None


@dataclass(frozen=True)
class RexmitAnswer:
    resend: tuple[bytes, ...]
    nak: tuple[int, ...]  # numbers to NAK: gone from the history
    reason: str


@dataclass
class TransmitHistory:
    max_rexmit_delay: float = 0.25
    size: int = HISTORY_SIZE
    packets: OrderedDict[int, _Sent] = field(default_factory=OrderedDict)
    #: per node: highest seq it acknowledged
    acked: dict[str, int] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)

    def record(self, seq: int, datagram: bytes) -> None:
        self.packets[seq] = _Sent(datagram)
        while len(self.packets) > self.size:
            self.packets.popitem(last=False)

    @property
    def lowest(self) -> int:
        return next(iter(self.packets)) if self.packets else 0

    @property
    def highest(self) -> int:
        return next(reversed(self.packets)) if self.packets else 0

    def ack(self, node: str, ackseq: int) -> None:
        if ackseq > self.acked.get(node, 0):
            self.acked[node] = ackseq

    def forget_node(self, node: str) -> None:
        """A node restarted or died: its ACKs describe a life that is over."""
        self.acked.pop(node, None)

    def answer(self, node: str, first: int, last: int, now: float) -> RexmitAnswer:
        if first <= 0 or last < first:
            self.counters["bad_rexmit_request"] += 1
            return RexmitAnswer((), (), f"bad request {first}..{last}")
        resend: list[bytes] = []
        nak: list[int] = []
        too_soon = self.max_rexmit_delay - 0.010
        acked = self.acked.get(node, 0)
        start = max(first, acked + 1)
        # Bounded work per request, whatever range was asked for.
        for seq in range(start, min(last, start + 2 * MAX_REXMIT_BATCH - 1) + 1):
            if seq > self.highest:
                break  # we never sent it (we restarted): nothing to say
            sent = self.packets.get(seq)
            if sent is None:
                nak.append(seq)
                continue
            if sent.last_rexmit is not None and now - sent.last_rexmit < too_soon:
                continue
            if len(resend) >= MAX_REXMIT_BATCH:
                break
            sent.last_rexmit = now
            resend.append(sent.datagram)
        self.counters["retransmitted"] += len(resend)
        self.counters["nak_sent"] += len(nak)
        return RexmitAnswer(tuple(resend), tuple(nak),
                            f"{node} asked for {first}..{last}: resending {len(resend)}, "
                            f"NAK {len(nak)}")
