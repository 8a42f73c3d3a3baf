"""The fault schedule: derived from the seed alone, so a campaign replays exactly.

Pure: a `random.Random` seeded here is the only source of choice; no clock, no I/O.
Targets are roles ("active", "standby"), resolved by the shell when the fault is
injected, so the same seed means the same faults whichever node holds the group.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from itertools import islice
from typing import Any


class FaultKind(StrEnum):
    """The faults a campaign injects, one at a time."""

    POWER_OFF = "power-off"  # the node loses power for `hold` s, then boots
    KILL_DAEMON = "kill-daemon"  # kill -9 of vigil's daemon; its init restarts it after `hold`
    KILL_SERVICE = "kill-service"  # kill -9 of the service (mariadbd) on the node
    CUT_MEDIUM = "cut-medium"  # one heartbeat medium (the hb link) of the node cut for `hold`
    PARTITION = "partition"  # every medium between the two nodes cut for `hold`
    LOSS = "loss"  # `percent` % of the node's frames on every medium dropped for `hold`
    STALL = "stall"  # SIGSTOP of vigil's daemon for `hold` s, then SIGCONT
    CUT_REPLICATION = "cut-replication"  # the replication link cut while writes run
    FLAP = "flap"  # the node's hb medium down and up every `period` s for `hold`
    STOP_FAILS = "stop-fails"  # the service's stop fails while the node is asked to stand by
    #: two at once: the replication link cut while writes run, then, still cut, the
    #: active node loses power (boots after 2 s)
    CUT_THEN_CRASH = "cut-then-crash"
    #: (replicated) the node's backing disk fails every read, write and flush for `hold`;
    #: then it works again and the operator attaches it (a primary first stands by)
    DISK_ERROR = "disk-error"
    #: every frame to and from the node held `delay` s in the switch, both ways, for
    #: `hold` (netem's delay), then what is held goes on at once
    DELAY = "delay"
    #: (replicated) the reads and writes of the node's backing disk that touch one of its
    #: bad blocks (1 in 16, scattered) fail for `hold`; then the disk works again and, if
    #: the volume let go of it, the operator attaches it
    BAD_BLOCKS = "bad-blocks"
    #: the node's wall clock stepped by `step` s for `hold`, then stepped back (an NTP
    #: correction); its monotonic clock goes on undisturbed, as after `date -s`
    CLOCK_JUMP = "clock-jump"


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"


SETUPS = ("heartbeat", "replicated", "director", "mixed", "heartbeat306")

#: Which faults each setup gets.
KINDS: dict[str, tuple[FaultKind, ...]] = {
    # new kinds go last: `--kinds` with the older ones replays a seed as it was before
    "heartbeat": (FaultKind.POWER_OFF, FaultKind.KILL_DAEMON, FaultKind.KILL_SERVICE,
                  FaultKind.CUT_MEDIUM, FaultKind.PARTITION, FaultKind.LOSS, FaultKind.STALL,
                  FaultKind.FLAP, FaultKind.STOP_FAILS, FaultKind.DELAY),
    "replicated": (FaultKind.POWER_OFF, FaultKind.KILL_DAEMON, FaultKind.KILL_SERVICE,
                   FaultKind.CUT_MEDIUM, FaultKind.PARTITION, FaultKind.LOSS, FaultKind.STALL,
                   FaultKind.CUT_REPLICATION, FaultKind.FLAP, FaultKind.CUT_THEN_CRASH,
                   FaultKind.DISK_ERROR, FaultKind.DELAY, FaultKind.BAD_BLOCKS),
    # the service fault kills a real server's nginx (the director's check must see it)
    "director": (FaultKind.POWER_OFF, FaultKind.KILL_DAEMON, FaultKind.KILL_SERVICE,
                 FaultKind.CUT_MEDIUM, FaultKind.PARTITION, FaultKind.LOSS, FaultKind.STALL,
                 FaultKind.FLAP, FaultKind.DELAY),
    # heartbeat 3.0.6 on one node, vigil on the other: the faults both daemons must ride
    # out alike (heartbeat v1 watches no service, so no kill-service; no stop-fails: with
    # vigil as its peer, heartbeat ignores hb_standby, "Other side is in flux")
    "mixed": (FaultKind.POWER_OFF, FaultKind.KILL_DAEMON, FaultKind.CUT_MEDIUM,
              FaultKind.PARTITION, FaultKind.STALL, FaultKind.FLAP),
    # heartbeat 3.0.6 on both nodes: the mixed setup's kinds, drawn from the heartbeat
    # setup's sequence, so that `--setup heartbeat --kinds` with these kinds and the
    # same seed injects the very same faults into vigil (the side-by-side table)
    "heartbeat306": (FaultKind.POWER_OFF, FaultKind.KILL_DAEMON, FaultKind.CUT_MEDIUM,
                     FaultKind.PARTITION, FaultKind.STALL, FaultKind.FLAP),
}
#: Kinds a setup takes only when `--kinds` names them: drawn by default they would change
#: every seed's sequence (and CI's campaigns) for a fault that must change nothing.
OPT_IN: dict[str, tuple[FaultKind, ...]] = {
    setup: (FaultKind.CLOCK_JUMP,) for setup in ("heartbeat", "replicated", "director", "mixed")
}
# frames lost on every medium, where heartbeat 3.0.6 runs: named, it comes in the place the
# heartbeat setup's sequence gives it, so heartbeat306 and vigil get the same faults again
OPT_IN["mixed"] += (FaultKind.LOSS,)
OPT_IN["heartbeat306"] = (FaultKind.LOSS,)
#: Setups that replay another setup's fault sequence (restricted to their own kinds).
SEQUENCE_OF = {"heartbeat306": "heartbeat"}

#: Faults whose target is always one role (both nodes are cut from each other alike).
_FIXED_ROLE = {FaultKind.PARTITION: Role.ACTIVE, FaultKind.CUT_REPLICATION: Role.ACTIVE,
               FaultKind.KILL_SERVICE: Role.ACTIVE, FaultKind.STOP_FAILS: Role.ACTIVE,
               FaultKind.CUT_THEN_CRASH: Role.ACTIVE}


@dataclass(frozen=True)
class Fault:
    """One planned fault: what, on which role, for how long, and the calm before it."""

    index: int
    kind: FaultKind
    role: Role
    #: seconds the fault lasts before it is healed (power back, link back, SIGCONT, restart)
    hold: float
    #: seconds of calm after the previous fault settled, before this one
    calm: float
    #: loss faults: the percentage of frames dropped
    percent: int = 0
    #: flap faults: seconds down, then as long up, over and over while the fault holds
    period: float = 0.0
    #: delay faults: seconds each frame is held, each way
    delay: float = 0.0
    #: clock-jump faults: seconds the node's wall clock is stepped by (negative: back)
    step: float = 0.0

    def describe(self) -> str:
        what = {
            FaultKind.POWER_OFF: "power off the {role} node, boot it after {hold}",
            FaultKind.KILL_DAEMON: "kill -9 the {role} node's heartbeat daemon, restart it "
                                   "after {hold}",
            FaultKind.KILL_SERVICE: "kill -9 the service (mariadbd on the {role} node; "
                                    "director setup: a real server's nginx)",
            FaultKind.CUT_MEDIUM: "cut the {role} node's hb medium for {hold}",
            FaultKind.PARTITION: "partition the nodes on every medium for {hold}",
            FaultKind.LOSS: "drop {percent}% of the {role} node's frames for {hold}",
            FaultKind.STALL: "SIGSTOP the {role} node's heartbeat daemon for {hold}",
            FaultKind.CUT_REPLICATION: "cut the replication link for {hold} while writes run",
            FaultKind.FLAP: "flap the {role} node's hb medium ({period} down, {period} up) "
                            "for {hold}",
            FaultKind.STOP_FAILS: "make the service's stop fail on the {role} node and ask "
                                  "it to stand by; repair it once the node has reacted",
            FaultKind.CUT_THEN_CRASH: "cut the replication link for {hold} while writes run, "
                                      "then power off the {role} node (boot it 2 s later)",
            FaultKind.DISK_ERROR: "fail every I/O of the {role} node's backing disk for "
                                  "{hold}, then repair it and attach it",
            FaultKind.DELAY: "delay every frame to and from the {role} node by {delay} "
                             "for {hold}",
            FaultKind.BAD_BLOCKS: "fail the I/O that touches a bad block (1 in 16) of the "
                                  "{role} node's backing disk for {hold}, then repair it "
                                  "(and attach it if it was let go)",
            FaultKind.CLOCK_JUMP: "step the {role} node's wall clock by {step}, step it back "
                                  "after {hold}",
        }[self.kind]
        return what.format(role=self.role.value, hold=f"{self.hold:.1f} s",
                           percent=self.percent, period=f"{self.period:.1f} s",
                           delay=f"{self.delay:g} s", step=f"{self.step:+g} s")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """The setup's heartbeat timings, which the hold times are drawn around."""

    keepalive: float
    deadtime: float


def _hold(rng: random.Random, kind: FaultKind, timing: Timing) -> float:
    """Hold times straddle deadtime where that decides the outcome (stall, cut, partition)."""
    dead = timing.deadtime
    if kind in (FaultKind.KILL_SERVICE, FaultKind.STOP_FAILS):  # held until a reaction
        return 0.0
    if kind is FaultKind.KILL_DAEMON:  # systemd's RestartSec: well inside deadtime, or not
        return rng.choice((0.5, 1.0, 2.0, dead * 0.6))
    if kind is FaultKind.STALL:
        return rng.choice((dead * 0.3, dead * 0.7, dead * 1.5, dead * 2.5))
    if kind is FaultKind.POWER_OFF:
        return rng.uniform(1.0, dead * 2.0)
    return rng.uniform(dead * 0.5, dead * 3.0)


def parse_kinds(setup: str, text: str) -> tuple[FaultKind, ...]:
    """A comma-separated list of fault kinds for `setup` (`--kinds`), or a clear error."""
    if setup not in KINDS:
        raise ValueError(f"no fault kinds for setup {setup!r} (setups: {', '.join(KINDS)})")
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {k.value: k for k in KINDS[setup] + OPT_IN.get(setup, ())}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown fault kind(s) {', '.join(unknown) or '(none given)'} for "
                         f"the {setup} setup (kinds: {', '.join(known)})")
    return tuple(dict.fromkeys(known[n] for n in names))


def faults(seed: int, setup: str, timing: Timing,
           only: tuple[FaultKind, ...] | None = None) -> Iterator[Fault]:
    """The endless fault sequence of `seed`: every kind once (seeded order), then at random.

    The first round covering every kind means even a short campaign exercises each;
    `only` restricts the kinds (the seed then gives another sequence).
    """
    if setup not in KINDS:
        raise ValueError(f"no fault kinds for setup {setup!r} (setups: {', '.join(KINDS)})")
    sequence = SEQUENCE_OF.get(setup, setup)
    rng = random.Random(f"vigil-torture/{sequence}/{seed}")
    allowed = KINDS[setup] if only is None else only
    offered = KINDS[setup] + OPT_IN.get(setup, ())
    kinds = tuple(k for k in KINDS[sequence] + OPT_IN.get(sequence, ())
                  if k in allowed and k in offered)
    index = 0
    first = list(kinds)
    rng.shuffle(first)
    while True:
        kind = first.pop(0) if first else rng.choice(kinds)
        role = _FIXED_ROLE.get(kind) or rng.choice((Role.ACTIVE, Role.ACTIVE, Role.STANDBY))
        hold = round(_hold(rng, kind, timing), 2)
        percent = rng.choice((20, 40, 60, 80)) if kind is FaultKind.LOSS else 0
        # around deadtime: a flapping medium that never, sometimes or always dies
        period = (round(rng.choice((0.2, 0.5, 1.2)) * timing.deadtime, 2)
                  if kind is FaultKind.FLAP else 0.0)
        # a WAN's delay, half a keepalive, and around deadtime (the node falls silent)
        delay = (round(rng.choice((0.02, timing.keepalive * 0.5, timing.deadtime * 0.5,
                                   timing.deadtime * 1.5)), 3)
                 if kind is FaultKind.DELAY else 0.0)
        # a clock set back (the harder case: times already seen come again) or forward,
        # by a minute or by a day
        step = (float(rng.choice((-86400, -3600, -61, 61, 3600, 86400)))
                if kind is FaultKind.CLOCK_JUMP else 0.0)
        calm = round(rng.uniform(1.0, 3.0), 2)
        yield Fault(index, kind, role, hold, calm, percent, period, delay, step)
        index += 1


def plan(seed: int, setup: str, timing: Timing, count: int,
         only: tuple[FaultKind, ...] | None = None) -> list[Fault]:
    """The first `count` faults of the seed's sequence."""
    return list(islice(faults(seed, setup, timing, only), count))
