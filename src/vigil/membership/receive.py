"""What to do with each authenticated packet: heartbeat's sequence rules, as a pure core.

Every sender numbers its packets (`seq`, one counter for all types except the
`NS_` ones) within a generation (`hg`, +1 at every daemon start). Per sender
we keep the generation, the highest sequence number seen and the numbers
still missing, and classify each packet (heartbeat's `should_drop_message`):

* older generation: a replay, dropped;
* newer generation: the sender restarted; its tracking starts over;
* the next number: accepted; a gap: accepted, the missing numbers are asked
  for again after a random delay (`NS_rexmit`) until they come or are NAKed;
* the last number again: a duplicate (the same packet over another medium);
* an older number: accepted if it is one we miss, a duplicate if we accepted
  it lately (media deliver out of order), else dropped as a replay;
* a node we had declared dead talking again in the same generation: it was a
  partition, not a restart. Its packets are accepted from the next number
  on; anything not newer than what we saw before it went silent is a replay
  (heartbeat forgets the numbers when a node dies; we keep them).

`NS_` packets carry no number: kept only when addressed to us or to everyone.
ACKs go out at every tenth contiguous number (at a per-node random offset),
as heartbeat's flow control expects.
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from dataclasses import dataclass, field

from vigil.membership.messages import NOSEQ_PREFIX, HeartbeatMessage, NakRexmit, Status

#: A gap bigger than this is not asked for again; tracking starts over (heartbeat's limit).
FLOWCONTROL_LIMIT = 250
#: At most this many missing numbers are remembered per sender.
MAX_MISSING = 500
#: ACK every this many packets (heartbeat's ACK_MSG_DIV).
ACK_EVERY = 10
#: An older number accepted within this many is a duplicate, not a replay.
RECENT_WINDOW = 64


class Verdict(enum.Enum):
    ACCEPT = "accept"  # new: act on it
    DUPLICATE = "duplicate"  # seen already (another medium): proves the link, nothing else
    DROP = "drop"  # replay, stale or not for us: ignore, count


class DropCause(enum.StrEnum):
    """Why a packet was dropped; each is also the name of its counter."""

    REPLAYED = "replayed"  # an older generation, or a number this generation used already
    STALE = "stale"  # an old number outside the window of recent ones: replay or stale
    NOT_FOR_US = "not_for_us"  # addressed to another node
    BAD_SEQ = "bad_seq"  # a sequenced message without a valid number

    @property
    def suspect(self) -> bool:
        """A drop that a replaying attacker would cause (worth a warning)."""
        return self in (DropCause.REPLAYED, DropCause.STALE)


class Event(enum.Enum):
    RESTART = "restart"  # the sender's generation went up
    PARTITION_HEALED = "partition_healed"  # a node we thought dead speaks in the same generation
    FIRST_CONTACT = "first_contact"


@dataclass(frozen=True)
class Classified:
    verdict: Verdict
    reason: str
    events: tuple[Event, ...] = ()
    #: ACK to send to the sender (the ackseq), if one is due.
    ack: int | None = None
    #: Missing numbers this packet revealed (for the log).
    lost: tuple[int, int] | None = None
    #: Set when the verdict is DROP.
    dropped: DropCause | None = None


@dataclass
class SenderTrack:
    generation: int = 0
    last_seq: int | None = None
    #: missing seq -> when to ask for it (again)
    missing: dict[int, float] = field(default_factory=dict)
    #: highest status seq accepted (heartbeat's status_seqno): stale status is a replay
    status_seq: int = 0
    #: set when the node was declared dead: the next newer packet resynchronises
    resync: bool = False
    last_acked: int = 0
    ack_trigger: int = 0
    #: numbers accepted lately: an older copy arriving over another medium is a duplicate
    recent: set[int] = field(default_factory=set)
    #: loaded from the state directory at start: the next contact is a first contact
    restored: bool = False

    def contiguous(self) -> int:
        """The highest number up to which nothing is missing."""
        if self.last_seq is None:
            return 0
        if self.missing:
            return min(self.missing) - 1
        return self.last_seq


class ReceiveRules:
    """Per-sender sequence tracking for one node; pure (randomness is injected)."""

    def __init__(self, me: str, max_rexmit_delay: float = 0.25,
                 rng: random.Random | None = None):
        self.me = me
        self.max_rexmit_delay = max_rexmit_delay
        self.rng = rng or random.Random()
        self.tracks: dict[str, SenderTrack] = {}
        self.counters: Counter[str] = Counter()

    def track(self, sender: str) -> SenderTrack:
        track = self.tracks.get(sender)
        if track is None:
            track = SenderTrack(ack_trigger=self.rng.randrange(ACK_EVERY))
            self.tracks[sender] = track
        return track

    def _rexmit_delay(self) -> float:
        low = 0.0 if self.max_rexmit_delay < 0.1 else 0.05
        return self.rng.uniform(low, self.max_rexmit_delay)

    # -- classification -------------------------------------------------------------------
    def classify(self, message: HeartbeatMessage, now: float) -> Classified:
        """Decide about one authenticated packet from another node."""
        sender = message.env.src
        if message.type.startswith(NOSEQ_PREFIX):
            return self._unsequenced(message, sender)
        seq, generation = message.env.seq, message.env.hg
        if seq is None or seq <= 0:
            return self._drop(DropCause.BAD_SEQ, f"{message.type} from {sender} has no valid seq")
        track = self.track(sender)
        events: list[Event] = []
        if generation < track.generation:
            return self._drop(DropCause.REPLAYED, f"{message.type} from {sender}: generation "
                              f"{generation:x} < {track.generation:x} (replay?)")
        if generation > track.generation:
            if track.generation > 0 and not track.restored:
                events.append(Event.RESTART)
                self.counters["restarts"] += 1
            else:
                events.append(Event.FIRST_CONTACT)
            self.tracks[sender] = track = SenderTrack(generation=generation,
                                                      ack_trigger=track.ack_trigger)
        elif track.resync:
            newest = max(track.last_seq or 0, track.status_seq)
            if seq <= newest:
                return self._drop(DropCause.REPLAYED, f"{message.type} from {sender}: seq {seq:x} "
                                  f"not newer than {newest:x} after it went silent")
            if track.restored:
                events.append(Event.FIRST_CONTACT)
                track.restored = False
            else:
                events.append(Event.PARTITION_HEALED)
                self.counters["partitions_healed"] += 1
            track.resync = False
            track.missing.clear()
            track.last_seq = seq
            return self._accept(track, message, seq, now, events, "back after silence")
        if track.last_seq is None or seq == track.last_seq + 1:
            track.last_seq = seq
            return self._accept(track, message, seq, now, events, "in order")
        if seq == track.last_seq:
            self.counters["duplicate"] += 1
            return Classified(Verdict.DUPLICATE, "duplicate", tuple(events))
        if seq > track.last_seq:
            first, last = track.last_seq + 1, seq - 1
            gap = last - first + 1
            self.counters["lost"] += gap
            if gap > FLOWCONTROL_LIMIT:
                track.missing.clear()
                reason = f"{gap} packets lost: too many to ask for"
            else:
                for missing in range(first, last + 1):
                    track.missing[missing] = now + self._rexmit_delay()
                while len(track.missing) > MAX_MISSING:
                    del track.missing[min(track.missing)]
                reason = f"{gap} packet(s) lost [{first:x}..{last:x}]"
            track.last_seq = seq
            classified = self._accept(track, message, seq, now, events, reason)
            return Classified(classified.verdict, reason, classified.events, classified.ack,
                              (first, last))
        if seq in track.missing:
            del track.missing[seq]
            self.counters["recovered"] += 1
            return self._accept(track, message, seq, now, events, "missing packet arrived")
        if seq in track.recent and seq > track.last_seq - RECENT_WINDOW:
            # The same packet over a slower medium, after a newer one over a faster one.
            self.counters["duplicate"] += 1
            return Classified(Verdict.DUPLICATE, "duplicate (out of order)", tuple(events))
        return self._drop(DropCause.STALE, f"{message.type} from {sender}: old seq {seq:x} "
                          f"(last {track.last_seq:x}): replay or stale")

    def _accept(self, track: SenderTrack, message: HeartbeatMessage, seq: int, now: float,
                events: list[Event], reason: str) -> Classified:
        track.recent.add(seq)
        if len(track.recent) > 2 * RECENT_WINDOW:
            floor = (track.last_seq or 0) - RECENT_WINDOW
            track.recent = {s for s in track.recent if s > floor}
        if isinstance(message, Status):
            track.status_seq = max(track.status_seq, seq)
        dest = getattr(message, "dest", None)
        if dest not in (None, self.me):
            self.counters[DropCause.NOT_FOR_US] += 1
            return Classified(Verdict.DROP, f"addressed to {dest}", tuple(events),
                              self._ack_due(track), dropped=DropCause.NOT_FOR_US)
        self.counters["accepted"] += 1
        return Classified(Verdict.ACCEPT, reason, tuple(events), self._ack_due(track))

    def _ack_due(self, track: SenderTrack) -> int | None:
        contiguous = track.contiguous()
        point = contiguous - ((contiguous - track.ack_trigger) % ACK_EVERY)
        if point > track.last_acked and point > 0:
            track.last_acked = point
            return point
        return None

    def _unsequenced(self, message: HeartbeatMessage, sender: str) -> Classified:
        dest = getattr(message, "dest", None)
        if dest not in (None, self.me):
            return self._drop(DropCause.NOT_FOR_US, f"{message.type} addressed to {dest}")
        if isinstance(message, NakRexmit):
            track = self.tracks.get(sender)
            if track is not None and track.missing.pop(message.firstseq, None) is not None:
                self.counters["irretrievable"] += 1
        self.counters["accepted"] += 1
        return Classified(Verdict.ACCEPT, "unsequenced")

    def _drop(self, cause: DropCause, reason: str) -> Classified:
        self.counters[cause] += 1
        return Classified(Verdict.DROP, reason, dropped=cause)

    # -- lifecycle ---------------------------------------------------------------------------
    def restore(self, sender: str, generation: int, seq: int) -> None:
        """What a previous run of this daemon saw last from `sender` (kept on disk): without
        it, a packet captured before this start would be new again (a replayed `shutdone`
        would start the groups). Only newer numbers of that generation are accepted."""
        self.tracks[sender] = SenderTrack(
            generation=generation, last_seq=seq, status_seq=seq, resync=True, restored=True,
            ack_trigger=self.rng.randrange(ACK_EVERY))

    def mark(self, sender: str) -> tuple[int, int] | None:
        """(generation, highest number) seen from `sender`: what `restore` takes back."""
        track = self.tracks.get(sender)
        if track is None or track.last_seq is None or track.generation <= 0:
            return None
        return track.generation, max(track.last_seq, track.status_seq)

    def node_dead(self, sender: str) -> None:
        """The node went silent: stop asking it for packets; resynchronise when it returns."""
        track = self.tracks.get(sender)
        if track is not None:
            track.missing.clear()
            track.resync = True

    # -- retransmission requests ------------------------------------------------------------
    def due_requests(self, now: float) -> list[tuple[str, int, int]]:
        """Ranges (sender, first, last) to ask for now; each is asked again later if needed."""
        requests = []
        for sender, track in self.tracks.items():
            due = sorted(seq for seq, when in track.missing.items() if when <= now)
            for first, last in _ranges(due):
                requests.append((sender, first, last))
                for seq in range(first, last + 1):
                    track.missing[seq] = now + self.max_rexmit_delay
                self.counters["rexmit_requested"] += last - first + 1
        return requests

    def next_deadline(self) -> float | None:
        times = [when for track in self.tracks.values() for when in track.missing.values()]
        return min(times) if times else None

    def missing_count(self, sender: str) -> int:
        track = self.tracks.get(sender)
        return len(track.missing) if track else 0


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], number)
        else:
            ranges.append((number, number))
    return ranges
