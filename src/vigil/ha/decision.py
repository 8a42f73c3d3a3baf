"""The failover decision core: which node runs which group, without any I/O.

Two nodes run the groups of haresources. Each node knows its own hold state
per group (`Hold`), and what the peer last told it: its hold states, what it
wants to hand over or take, its phase and how many ping nodes it reaches
(vigil's state gossip rides in every heartbeat, so a lost packet is repaired
by the next one). From that, both nodes compute the same desired holder for
every group, and each acts only on its own side:

* the giver stops first; the taker starts only when the peer says the group
  is not running there (or the peer is dead, after fencing if the peer may
  still run it);
* a dead peer's groups are taken over (heartbeat's `mach_down`);
* with `auto_failback on` (and `legacy`) a group taken over from a dead node
  goes home when that node is back and ready; with `off` it stays;
* `standby` (give away) and `takeover` (ask for) move groups on request;
  graceful shutdown gives everything away;
* ipfail: a node that reaches fewer ping nodes than its peer (for longer
  than `ipfail_hold`) gives its groups away; equal reach moves nothing;
* split brain (both run a group after a partition heals) is settled as soon
  as one heartbeat crosses: the **keeper** is the node that reaches more
  ping nodes, and on a tie the group's home node (its haresources line's
  first word). The keeper never stops the group; it re-announces its
  addresses. The other node stops it.

Every call returns `Decision`s: actions plus the one-line reason the daemon logs.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from vigil.config.hacf import DEFAULT_KEEPALIVE
from vigil.errors import UsageError
from vigil.ha.groups import Group
from vigil.ha.state import (
    Fencing,
    Hold,
    Phase,
    next_fencing,
    next_hold,
    next_phase,
)


class Cause(enum.StrEnum):
    """Why a group should run where `desired` says: the code decides on these members,
    and their text is only what the logs show (rewording one changes no behaviour)."""

    SHUTTING_DOWN = "shutting down"
    ALONE = "alone"
    PEER_SHUT_DOWN = "peer shut down"
    PEER_DEAD = "peer dead"
    PEER_NEVER_HEARD = "peer never heard"
    PEER_LEAVING = "peer leaving"
    NEGOTIATION_TIMEOUT = "negotiation timeout"
    WAITING_FOR_PEER = "waiting for the peer's state"
    PEER_HANDS_OVER = "peer hands it over"
    BOTH_ASKED = "both asked: home node"
    PEER_ASKED = "peer asked for it"
    SPLIT_BRAIN = "split brain"
    PEER_RELEASING = "peer is releasing it"
    RELEASING_HERE = "releasing it here"
    FAILED_HERE = "failed here"
    FAILED_ON_PEER = "failed on peer"
    PEER_REACHES_MORE = "peer reaches more ping nodes"
    AUTO_FAILBACK = "auto_failback: home node is back"
    NOT_READY_HERE = "not startable here yet"
    HOLDING = "holding"
    PEER_RUNS_IT = "peer runs it"
    BOTH_IN_TRANSITION = "both in transition"
    BETTER_PING_REACH = "better ping reach"
    HOME_NODE = "home node"
    ITS_HOME_NODE = "its home node"
    ADOPTED = "adopted"
    PEER_LEFT_IT_STUCK = "the peer left it stuck (its stop failed there)"


AUTO_FAILBACK = ("on", "off", "legacy")
#: Reasons for holding a group that allow auto-failback to move it home again.
FAILBACK_REASONS = frozenset({Cause.PEER_DEAD, Cause.PEER_NEVER_HEARD, Cause.ALONE, Cause.ADOPTED,
                              Cause.NEGOTIATION_TIMEOUT, Cause.PEER_SHUT_DOWN,
                              Cause.PEER_LEAVING})
FREE = (Hold.RELEASED, Hold.FAILED, Hold.UNREADY)
#: Hand-overs that need no agreement from the peer (it is already running the group,
#: or we are leaving): every other voluntary stop asks the peer's permission first
#: when the peer needs it (heartbeat's standby exchange): `decide` is told which
#: hand-overs the peer agreed to, and lists in `awaiting_permission` those it held back.
UNGATED = frozenset({Cause.SPLIT_BRAIN, Cause.SHUTTING_DOWN})
RUNNING = (Hold.HELD, Hold.STARTING, Hold.STUCK)
RELEASING = (Hold.STOPPING, Hold.CLEANING)


# -- actions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StartGroup:
    group: Group


@dataclass(frozen=True)
class StopGroup:
    group: Group
    cleanup: bool = False  # after a failed start
    #: the group goes to the peer (a split brain settled, a failback, a standby): after
    #: the stop, announce its addresses at the MAC of whoever answers for them, for a
    #: keeper that does not announce them (heartbeat 3.0.6 keeping through a split)
    handoff: bool = False


@dataclass(frozen=True)
class Announce:
    group: Group


@dataclass(frozen=True)
class CancelStart:
    """Abandon the start of a group in progress here (the peer keeps it): the start
    then ends as failed, and what it started is stopped."""
    group: Group


@dataclass(frozen=True)
class ProbeHolders:
    """Ask the segment whether another host answers for the addresses of a group held
    here (`FailoverCore.peer_answers` takes the answer)."""
    group: Group


@dataclass(frozen=True)
class Fence:
    node: str


@dataclass(frozen=True)
class SendShutdone:
    pass


Action = StartGroup | StopGroup | CancelStart | Announce | ProbeHolders | Fence | SendShutdone


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    reason: str
    level: str = "info"  # info | warning | error | critical


# -- settings and the peer as we know it -----------------------------------------------------

@dataclass(frozen=True)
class FailoverSettings:
    """Plain values: the config layer fills them from ha.cf and haresources."""

    me: str
    peer: str | None
    groups: tuple[Group, ...]
    auto_failback: str = "legacy"
    keepalive: float = DEFAULT_KEEPALIVE
    #: fencing configured (stonith_host lines or a fence command)?
    fencing: bool = False
    #: "require": a failed fence means no takeover; "ignore": take over anyway (loudly)
    fence_policy: str = "require"
    fence_retry: float = 10.0
    #: wait this long for a peer that says nothing about its groups (heartbeat's RQSTDELAY)
    negotiation_timeout: float = 10.0
    #: a worse ping reach must last this long before groups move (None: 3 keepalives)
    ipfail_hold: float | None = None
    #: a failed start is retried after this long when nobody else can run the group
    failed_retry: float = 30.0
    #: a hand-over the peer does not pick up within this long is cancelled
    handover_timeout: float = 10.0
    #: extra wait after the peer is declared dead before taking over (vigil.cf)
    takeover_delay: float = 0.0
    ping_configured: bool = False
    #: re-announce the addresses of the groups held here this often (vigil.cf; 0: never)
    garp_refresh: float = 0.0

    def __post_init__(self) -> None:
        if self.auto_failback not in AUTO_FAILBACK:
            raise UsageError(f"auto_failback must be on, off or legacy, "
                             f"not {self.auto_failback!r}")
        if self.fence_policy not in ("require", "ignore"):
            raise UsageError(f"fence policy must be require or ignore, "
                             f"not {self.fence_policy!r}")

    @property
    def failback(self) -> bool:
        return self.auto_failback in ("on", "legacy")

    @property
    def ipfail_delay(self) -> float:
        return self.ipfail_hold if self.ipfail_hold is not None else 3 * self.keepalive


@dataclass
class PeerView:
    """What we know of the peer. `states[i]` is None until it told us."""

    name: str
    alive: bool = False
    ever_heard: bool = False
    phase: str = "unknown"  # init | ready | leaving | unknown
    states: list[Hold | None] = field(default_factory=list)
    give: frozenset[int] = frozenset()
    want: frozenset[int] = frozenset()
    ping: int | None = None
    #: it sent shutdone: it released everything and left (no fencing needed)
    gone: bool = False
    #: its haresources differs from ours: its per-group states cannot be trusted
    mismatch: bool = False


def _ids(groups: Iterable[Group]) -> str:
    return " ".join(g.key for g in groups)


class FailoverCore:
    """One node's view and decisions. Pure: `now` in, `Decision`s out."""

    def __init__(self, settings: FailoverSettings, now: float):
        self.settings = settings
        self.groups = settings.groups
        count = len(self.groups)
        self.hold: list[Hold] = [Hold.RELEASED] * count
        self.why: list[str] = [""] * count
        self.phase = Phase.INIT
        self.give: dict[int, str] = {}  # group -> why we want to hand it over
        self.want: dict[int, str] = {}  # group -> why we want it
        self.peer = PeerView(settings.peer or "", states=[None] * count)
        self.fencing = Fencing.IDLE
        self.fence_failed_at: float | None = None
        self.failed_at: dict[int, float] = {}
        #: groups whose start failed here while the peer was judged dead: if the peer
        #: returns from a partition (it ran all along), the failure was most likely its
        #: addresses still answering, and says nothing about this node
        self.failed_peer_away: set[int] = set()
        self.failing: set[int] = set()  # stopping because monitoring said it failed here
        self.released_at: dict[int, float] = {}
        self.want_since: dict[int, float] = {}
        self.split: set[int] = set()
        #: held here when the peer came back after a partition, not announced yet (see
        #: `peer_returned`)
        self.returned: set[int] = set()
        #: held here, and another host answered for their addresses while the peer's
        #: state for them was unknown (see `peer_answers`)
        self.answered: set[int] = set()
        #: starts abandoned here (`CancelStart`) that have not ended yet
        self.cancelling: set[int] = set()
        self.my_ping: int | None = None
        self.worse_since: float | None = None
        self.ready_at: float | None = None
        self.peer_died_at: float | None = None
        #: when the peer's shutdone said it released everything (see `_take`)
        self.peer_left_at: float | None = None
        #: the next periodic re-announcement (garp_refresh), while groups are held here
        self.refresh_at: float | None = None
        self.started_at = now
        self.version = 0  # bumps whenever something the peer should know changes
        #: groups whose voluntary hand-over waits for the peer's agreement (see UNGATED),
        #: as of the last `decide`
        self.awaiting_permission: set[int] = set()
        self._warned_no_fencing = False

    # -- helpers --------------------------------------------------------------------------------
    def _changed(self) -> None:
        self.version += 1

    def _set(self, index: int, event: str, why: str | None = None) -> None:
        self.hold[index] = next_hold(self.hold[index], event)
        if why is not None:
            self.why[index] = why
        self._changed()

    def home_is_me(self, group: Group) -> bool:
        return group.home == self.settings.me

    def _select(self, which: str, predicate: str) -> list[Group]:
        if which not in ("local", "foreign", "all", "failback"):
            raise UsageError(f"which groups: local, foreign or all, not {which!r}")
        if which == "failback":
            which = "foreign"
        chosen = []
        for group in self.groups:
            local = self.home_is_me(group)
            if which == "all" or (which == "local") == local:
                chosen.append(group)
        return chosen

    @property
    def alone(self) -> bool:
        return self.settings.peer is None

    def peer_may_run(self, index: int) -> bool:
        """Whether the peer may be running the group (unknown counts as yes)."""
        if self.alone or self.peer.gone:
            return False
        state = self.peer.states[index]
        return state is None or state.may_run or self.peer.mismatch

    # -- inputs from the membership layer -------------------------------------------------------
    def comm_up(self, now: float) -> list[Decision]:
        if self.phase is not Phase.INIT:
            return []
        self.phase = next_phase(self.phase, "comm_up")
        self.ready_at = now
        self._changed()
        who = "alone" if self.alone else (
            f"peer {self.peer.name} " + ("heard" if self.peer.alive else "silent for initdead"))
        return [Decision((), f"communication up ({who}): negotiating groups")]

    def adopt(self, index: int) -> Decision:
        """At start-up the group was found running here (left by a crash): claim it honestly."""
        self._set(index, "adopt", Cause.ADOPTED)
        return Decision((), f"group {self.groups[index]} found running at start: holding it",
                        "warning")

    def peer_alive(self, now: float) -> list[Decision]:
        self.peer.alive = True
        self.peer.ever_heard = True
        self.peer.gone = False
        if self.fencing is not Fencing.RUNNING:
            self.fencing = next_fencing(self.fencing, "reset")
        self.fence_failed_at = None
        return []

    def peer_restarted(self, now: float) -> list[Decision]:
        """A new generation: its earlier states and intents are void until it speaks."""
        self.failed_peer_away.clear()  # it did restart: it was not running all along
        self.peer.states = [None] * len(self.groups)
        self.peer.give = self.peer.want = frozenset()
        self.peer.phase = "unknown"
        self.answered.clear()
        return (self.peer_alive(now) + self.announce_held(f"peer {self.peer.name} restarted")
                + self._probe_given(f"peer {self.peer.name} restarted"))

    def peer_dead(self, now: float) -> list[Decision]:
        self.peer.alive = False
        self.peer_died_at = now
        self.returned.clear()
        self.answered.clear()
        self.peer.give = self.peer.want = frozenset()
        self.worse_since = None
        cancelled = sorted(self.give)
        self.give.clear()
        self.want.clear()
        if cancelled:
            self._changed()
            return [Decision((), f"peer {self.peer.name} died: hand-over of "
                             f"{_ids(self.groups[i] for i in cancelled)} cancelled", "warning")]
        return []

    def peer_info(self, now: float, *, states: list[Hold | None] | None = None,
                  give: Iterable[int] = (), want: Iterable[int] = (),
                  phase: str | None = None, ping: int | None = None,
                  mismatch: bool = False) -> list[Decision]:
        """The peer's gossip (from its heartbeat) or its resource messages."""
        if states is not None:
            self.peer.states = list(states)
            self.answered = {i for i in self.answered if self.peer.states[i] is None}
        self.peer.give = frozenset(give)
        self.peer.want = frozenset(want)
        if phase is not None:
            self.peer.phase = phase
        self.peer.ping = ping
        self.peer.mismatch = mismatch
        return []

    def peer_gone(self, now: float) -> list[Decision]:
        """shutdone: the peer released everything and is leaving."""
        self.peer.gone = True
        self.peer_left_at = now
        # a group whose stop failed there may still run there: it stays the peer's
        self.peer.states = [Hold.STUCK if s is Hold.STUCK else Hold.RELEASED
                            for s in self.peer.states]
        self.peer.phase = "leaving"
        return [Decision((), f"peer {self.peer.name} shut down and released its groups"),
                *self.announce_held(f"peer {self.peer.name} released its groups")]

    def peer_returned(self, now: float) -> list[Decision]:
        """The peer is heard again after a partition: it may have run our groups meanwhile.

        Announced at once: the groups this node keeps should both run them (the split
        brain rule). The others are given away if the peer runs them too; they are
        announced only once the peer says it does not (`returned`).
        """
        keep = [g for g in self.groups if self.keeper(g) == "me"]
        self.returned = {g.index for g in self.groups if self.hold[g.index] is Hold.HELD
                         and g not in keep}
        self.answered.clear()
        why = f"peer {self.peer.name} is back after a partition"
        return self._void_failures_while_away() + self.announce_held(why, keep) \
            + self._probe_given(why)

    def _void_failures_while_away(self) -> list[Decision]:
        """Starts that failed here while the peer, alive all along, was judged dead.

        The takeover was refused because the peer still ran the group (its address
        answered: the duplicate-address guard), not because of this node; kept as
        failed, the group could never be handed here again (a standby would be
        refused) until an operator ran `vigil cleanup`.
        """
        void = [g for g in self.groups
                if g.index in self.failed_peer_away and self.hold[g.index] is Hold.FAILED]
        self.failed_peer_away.clear()
        for group in void:
            self._set(group.index, "clear", "")
            self.failed_at.pop(group.index, None)
        if not void:
            return []
        return [Decision((), f"peer {self.peer.name} is back after a partition: the start of "
                         f"{_ids(void)} that failed here meanwhile is not held against this "
                         "node (the peer ran it all along)", "warning")]

    def _probe_given(self, why: str) -> list[Decision]:
        """Ask the segment about the held groups the split-brain rule gives the peer.

        A peer whose state is not known yet (heartbeat 3.0.6 restarting after a split
        says what it holds seconds after it is heard) may already hold their addresses:
        if it answers for them, the split is settled now instead of then.
        """
        given = [g for g in self.groups
                 if self.hold[g.index] is Hold.HELD and self.keeper(g) == "peer"]
        if not given:
            return []
        return [Decision(tuple(ProbeHolders(g) for g in given),
                         f"{why}: asking whether it holds the addresses of {_ids(given)}")]

    def peer_answers(self, index: int, now: float) -> list[Decision]:
        """Another host answered for the addresses of a group held here (`ProbeHolders`).

        Taken as the peer running the group only while the peer's own word on it is
        missing: once it has spoken, what it says decides.
        """
        group = self.groups[index]
        if self.hold[index] is not Hold.HELD or self.alone or not self.peer.alive or \
                (self.peer.states[index] is not None and not self.peer.mismatch):
            return []
        self.answered.add(index)
        return [Decision((), f"another host answers for the addresses of {group} while "
                         f"peer {self.peer.name} has not said what it runs: it runs {group} "
                         "too", "warning")]

    def announce_held(self, why: str, groups: Iterable[Group] | None = None) -> list[Decision]:
        """Announce the addresses of every group held here again.

        A peer that ran a group while partitioned (a heartbeat 3.0.6 peer shuts
        down and releases on heal without a word to the clients) leaves their ARP
        and neighbour caches pointing at its MAC: only the keeper can correct them.
        """
        held = [g for g in (self.groups if groups is None else groups)
                if self.hold[g.index] is Hold.HELD]
        if not held:
            return []
        return [Decision(tuple(Announce(g) for g in held),
                         f"{why}: announcing the addresses of {_ids(held)} again")]

    def set_ping(self, reachable: int | None, now: float) -> None:
        if reachable != self.my_ping:
            self.my_ping = reachable
            self._changed()

    # -- inputs from the daemon -----------------------------------------------------------------
    def action_done(self, action: Action, ok: bool, now: float) -> list[Decision]:
        if isinstance(action, StartGroup):
            index = action.group.index
            abandoned = index in self.cancelling
            self.cancelling.discard(index)
            if not ok and abandoned:
                self._set(index, "start_failed")
                self.want.pop(index, None)
                self.cancelling.add(index)  # until what it started is stopped
                return [Decision((StopGroup(action.group, cleanup=True, handoff=True),),
                                 f"start of group {action.group} abandoned: stopping what "
                                 "started", "warning")]
            if ok:
                self._set(index, "started")
                self.failed_at.pop(index, None)
                self.failed_peer_away.discard(index)
                self.want.pop(index, None)
                return [Decision((), f"group {action.group} running ({self.why[index]})")]
            self._set(index, "start_failed")
            self.failed_at[index] = now
            self.want.pop(index, None)
            if not self.alone and not self.peer.alive and self.peer.ever_heard:
                self.failed_peer_away.add(index)
            return [Decision((StopGroup(action.group, cleanup=True),),
                             f"group {action.group} failed to start: stopping what started",
                             "error")]
        if isinstance(action, StopGroup):
            index = action.group.index
            was = self.hold[index]
            if ok and index in self.failing:
                self.failing.discard(index)
                self._set(index, "stopped_after_failure")
                self.failed_at[index] = now
                return [Decision((), f"group {action.group} stopped after it failed here: "
                                 "the peer may take it")]
            self.failing.discard(index)
            if was is Hold.CLEANING and index in self.cancelling:
                self.cancelling.discard(index)
                if ok:
                    self._set(index, "abandoned")
                    self.released_at[index] = now
                    return [Decision((), f"group {action.group} stopped after its start "
                                     "was abandoned")]
            if ok:
                self._set(index, "stopped")
                self.released_at[index] = now
                return [Decision((), f"group {action.group} stopped"
                                 + (" after its failed start" if was is Hold.CLEANING else ""))]
            self._set(index, "stop_failed")
            return [Decision((), f"group {action.group} failed to stop: it may still run here; "
                             "it stays claimed (the peer will not take it) until an "
                             "operator fixes the cause and runs vigil cleanup", "critical")]
        if isinstance(action, Fence):
            if self.fencing is not Fencing.RUNNING:
                return []
            if self.peer.alive:
                self.fencing = Fencing.IDLE
                return [Decision((), f"fencing of {action.node} finished after it came back")]
            self.fencing = next_fencing(self.fencing, "ok" if ok else "failed")
            if ok:
                return [Decision((), f"peer {action.node} fenced: taking over is safe")]
            self.fence_failed_at = now
            policy = self.settings.fence_policy
            if policy == "ignore":
                return [Decision((), f"FENCING OF {action.node} FAILED: taking over anyway "
                                 "(fence policy ignore): shared data is not protected",
                                 "critical")]
            return [Decision((), f"FENCING OF {action.node} FAILED: no takeover; retrying in "
                             f"{self.settings.fence_retry:g}s. Its groups stay stopped until a "
                             "fence succeeds: see fence.result for the device's answer, fix the "
                             "device (vigil check), or power the node off and let the retry "
                             "confirm it", "critical")]
        return []

    def readiness(self, index: int, unready: str | None) -> list[Decision]:
        """Whether a group not running here could start here now (None) or why not.

        Only a released group changes: a home node whose replicated disk still
        syncs says so, and its peer keeps the group instead of failing back into
        a start that cannot succeed yet.
        """
        state = self.hold[index]
        group = self.groups[index]
        if unready is not None and state is Hold.RELEASED:
            self._set(index, "unready")
            return [Decision((), f"group {group} cannot start here yet: {unready}")]
        if unready is None and state is Hold.UNREADY:
            self._set(index, "ready")
            return [Decision((), f"group {group} can start here again")]
        return []

    def group_failed(self, index: int, reason: str, now: float) -> list[Decision]:
        """Monitoring gave up on a running group: stop it here so that the peer takes it."""
        group = self.groups[index]
        if self.hold[index] is not Hold.HELD or self.phase is not Phase.READY:
            return []
        self.failing.add(index)
        self._set(index, "stop")
        return [Decision((StopGroup(group),), f"group {group} failed here ({reason}): "
                         "stopping it so that the peer can take it", "error")]

    def standby(self, which: str, now: float) -> Decision:
        """hb_standby: hand our groups (local, foreign or all) to the peer."""
        chosen = [g for g in self._select(which, "standby") if self.hold[g.index].may_run]
        if self.alone or not self.peer.alive:
            return Decision((), f"standby {which} refused: no live peer to take over", "warning")
        if not chosen:
            return Decision((), f"standby {which}: no such group runs here")
        # the peer will not take a group that failed there (the hand-over rule): say so
        # rather than answer "handing" for a request that would then lapse unseen
        failed = [g for g in chosen if self.peer.states[g.index] is Hold.FAILED]
        chosen = [g for g in chosen if g not in failed]
        kept = (f"{_ids(failed)} failed on {self.peer.name} and stays here (`vigil cleanup` "
                f"on {self.peer.name} once its cause is fixed)") if failed else ""
        if not chosen:
            return Decision((), f"standby {which} refused: {kept}", "warning")
        for group in chosen:
            self.give[group.index] = f"standby {which}"
            self.want.pop(group.index, None)
        self._changed()
        return Decision((), f"standby {which}: handing {_ids(chosen)} to {self.peer.name}"
                        + (f"; {kept}" if kept else ""), "warning" if kept else "info")

    def takeover(self, which: str, now: float) -> Decision:
        """hb_takeover: ask for groups (local, foreign or all) to run here."""
        chosen = self._select("local" if which == "failback" else which, "takeover")
        for group in chosen:
            if self.hold[group.index] is Hold.FAILED:
                self._set(group.index, "clear")
            self.failed_at.pop(group.index, None)
        chosen = [g for g in chosen if not self.hold[g.index].may_run]
        if not chosen:
            return Decision((), f"takeover {which}: those groups run here already")
        for group in chosen:
            self.want[group.index] = f"takeover {which}"
            self.give.pop(group.index, None)
        self._changed()
        return Decision((), f"takeover {which}: asking for {_ids(chosen)}")

    def clear(self, index: int) -> Decision:
        """`vigil cleanup`: an operator fixed what made a group's stop or start fail.

        A group whose stop failed may still run here: its stop is tried again, and only
        a stop that succeeds releases it (to the peer, or to a start here). A group
        whose start failed was stopped already: it is released at once.
        """
        group = self.groups[index]
        if self.hold[index] is Hold.STUCK:
            self._set(index, "stop", "")
            return Decision((StopGroup(group),), f"group {group}: stop tried again by the "
                            "operator (vigil cleanup)")
        if self.hold[index].needs_clearing:
            self._set(index, "clear", "")
            return Decision((), f"group {group} cleared by operator")
        return Decision((), f"group {group} needs no clearing")

    def shutdown(self, now: float) -> list[Decision]:
        if self.phase is Phase.DONE:
            return []
        self.phase = next_phase(self.phase, "shutdown")
        self._changed()
        return [Decision((), "graceful shutdown: releasing every group to the peer")]

    # -- the decision ---------------------------------------------------------------------------
    def desired(self, index: int, now: float) -> tuple[str | None, str]:
        """Who should run the group: "me", "peer" or None (wait), and why."""
        group = self.groups[index]
        mine = self.hold[index]
        if self.phase is Phase.LEAVING or self.phase is Phase.DONE:
            return "peer", Cause.SHUTTING_DOWN
        if self.alone:
            return "me", Cause.ALONE
        peer = self.peer
        if peer.states[index] is Hold.STUCK and (peer.gone or peer.phase == "leaving"):
            return None, Cause.PEER_LEFT_IT_STUCK  # never started here while it may run there
        if not peer.alive or peer.gone:
            if peer.gone:
                return "me", Cause.PEER_SHUT_DOWN
            return "me", Cause.PEER_DEAD if peer.ever_heard else Cause.PEER_NEVER_HEARD
        theirs = peer.states[index]
        if peer.phase == "leaving":
            return "me", Cause.PEER_LEAVING
        if theirs is None or peer.mismatch:
            if index in self.answered and mine in RUNNING:
                return self.keeper(group), Cause.SPLIT_BRAIN
            if self.home_is_me(group) and self.ready_at is not None and \
                    now - self.ready_at >= self.settings.negotiation_timeout:
                return "me", Cause.NEGOTIATION_TIMEOUT
            return None, Cause.WAITING_FOR_PEER
        # explicit requests
        if index in self.give and theirs is not Hold.FAILED:
            return "peer", self.give[index]
        if index in peer.give and mine is not Hold.FAILED:
            return "me", Cause.PEER_HANDS_OVER
        if index in self.want and index in peer.want:
            return ("me" if self.home_is_me(group) else "peer"), Cause.BOTH_ASKED
        if index in self.want:
            return "me", self.want[index]
        if index in peer.want:
            return "peer", Cause.PEER_ASKED
        i_run = mine in RUNNING
        they_run = theirs in RUNNING
        if i_run and they_run:
            return self.keeper(group), Cause.SPLIT_BRAIN
        if i_run and theirs in RELEASING:
            return "me", Cause.PEER_RELEASING
        if they_run and mine in RELEASING:
            return "peer", Cause.RELEASING_HERE
        if mine is Hold.FAILED and theirs is not Hold.FAILED:
            return "peer", Cause.FAILED_HERE
        if theirs is Hold.FAILED and mine is not Hold.FAILED:
            return "me", Cause.FAILED_ON_PEER
        if mine.may_run and not theirs.may_run:
            if self._worse_reach(now):
                return "peer", Cause.PEER_REACHES_MORE
            if self.settings.failback and not self.home_is_me(group) and \
                    self.why[index] in FAILBACK_REASONS and peer.phase == "ready" and \
                    theirs is not Hold.UNREADY and not self._peer_worse_reach():
                return "peer", Cause.AUTO_FAILBACK
            return "me", self.why[index] or Cause.HOLDING
        if theirs.may_run and not mine.may_run:
            return "peer", Cause.PEER_RUNS_IT
        if mine.may_run and theirs.may_run:
            return None, Cause.BOTH_IN_TRANSITION
        # nobody runs it
        if (mine is Hold.UNREADY) != (theirs is Hold.UNREADY):
            return ("peer" if mine is Hold.UNREADY else "me"), Cause.NOT_READY_HERE
        if self.settings.ping_configured and self.my_ping is not None and \
                peer.ping is not None and self.my_ping != peer.ping:
            return ("me" if self.my_ping > peer.ping else "peer"), Cause.BETTER_PING_REACH
        if self.home_is_me(group):
            return "me", Cause.HOME_NODE
        return "peer", Cause.ITS_HOME_NODE

    def keeper(self, group: Group) -> str:
        """The split-brain rule: more ping nodes reached keeps; a tie: the home node."""
        mine, theirs = self.my_ping, self.peer.ping
        if self.settings.ping_configured and mine is not None and theirs is not None \
                and mine != theirs:
            return "me" if mine > theirs else "peer"
        return "me" if self.home_is_me(group) else "peer"

    def _worse_reach(self, now: float) -> bool:
        return self.worse_since is not None and \
            now - self.worse_since >= self.settings.ipfail_delay

    def _peer_worse_reach(self) -> bool:
        return (self.settings.ping_configured and self.my_ping is not None
                and self.peer.ping is not None and self.peer.ping < self.my_ping)

    def _update_ipfail(self, now: float) -> None:
        worse = (self.settings.ping_configured and self.peer.alive and not self.peer.gone
                 and self.my_ping is not None and self.peer.ping is not None
                 and self.my_ping < self.peer.ping)
        if worse and self.worse_since is None:
            self.worse_since = now
        elif not worse:
            self.worse_since = None

    def _clear_intents(self, now: float) -> list[Decision]:
        """Requests end when done, when they failed, or when the peer ignores them."""
        decisions = []
        timeout = self.settings.handover_timeout
        for index in list(self.give):
            theirs = self.peer.states[index]
            released = self.released_at.get(index)
            if theirs in (Hold.HELD, Hold.FAILED):
                del self.give[index]
                self._changed()
            elif self.hold[index] is Hold.RELEASED and released is not None and \
                    now - released >= timeout and (theirs is None or not theirs.may_run):
                del self.give[index]
                self._changed()
                decisions.append(Decision((), f"hand-over of {self.groups[index]} cancelled: "
                                          f"the peer did not take it within {timeout:g}s",
                                          "warning"))
        for index in list(self.want_since):
            if index not in self.want:
                del self.want_since[index]
        for index in list(self.want):
            theirs = self.peer.states[index]
            since = self.want_since.setdefault(index, now)
            if self.hold[index] in (Hold.HELD, Hold.FAILED, Hold.STUCK):
                del self.want[index]
                self._changed()
            elif theirs is Hold.HELD and now - since >= timeout:
                del self.want[index]
                self._changed()
                decisions.append(Decision((), f"takeover of {self.groups[index]} cancelled: "
                                          f"the peer did not release it within {timeout:g}s",
                                          "warning"))
        return decisions

    def decide(self, now: float, handover_agreed: Container[int] | None = None
               ) -> list[Decision]:
        """Everything to do now. Idempotent: an action already in flight is not repeated.

        `handover_agreed`: the groups the peer agreed to take over (heartbeat's standby
        exchange); None when the peer needs no asking. A voluntary hand-over of any other
        group waits, and is listed in `awaiting_permission`.
        """
        self.awaiting_permission = set()
        if self.phase is Phase.INIT or self.phase is Phase.DONE:
            return []
        self._update_ipfail(now)
        decisions: list[Decision] = self._clear_intents(now)
        fence_needed: list[Group] = []
        for group in self.groups:
            index = group.index
            mine = self.hold[index]
            if mine.busy:
                cancel = self._cancel_start(group, now)
                if cancel is not None:
                    decisions.append(cancel)
                continue
            holder, why = self.desired(index, now)
            if holder == "me":
                decision = self._take(group, why, now, fence_needed)
            elif holder == "peer" and mine is Hold.HELD:
                if why not in UNGATED and handover_agreed is not None and \
                        index not in handover_agreed:
                    self.awaiting_permission.add(index)
                    continue  # the peer has not agreed to take it yet
                decision = self._give(group, why)
            else:
                decision = None
            if decision is not None:
                decisions.append(decision)
        if fence_needed:
            decisions += self._fence(fence_needed, now)
        decisions += self._refresh(now)
        if self.phase is Phase.LEAVING and all(not h.may_run or h is Hold.STUCK
                                               for h in self.hold):
            self.phase = next_phase(self.phase, "released")
            self._changed()
            stuck = [g for g in self.groups if self.hold[g.index] is Hold.STUCK]
            note = f" (still stuck: {_ids(stuck)})" if stuck else ""
            decisions.append(Decision((SendShutdone(),),
                                      f"every group released{note}: telling the peer, leaving",
                                      "error" if stuck else "info"))
        return decisions

    def _refresh(self, now: float) -> list[Decision]:
        """vigil.cf's garp_refresh: announce the held addresses again every so often.

        The clock starts when a group is first held here (its start announced
        the addresses already) and stops while nothing is held.
        """
        every = self.settings.garp_refresh
        if every <= 0 or self.phase is not Phase.READY or \
                not any(h is Hold.HELD for h in self.hold):
            self.refresh_at = None
            return []
        if self.refresh_at is None:
            self.refresh_at = now + every
            return []
        if now < self.refresh_at:
            return []
        self.refresh_at = now + every
        return [dataclasses.replace(d, level="debug")
                for d in self.announce_held(f"garp_refresh {every:g}s")]

    def _take(self, group: Group, why: str, now: float,
              fence_needed: list[Group]) -> Decision | None:
        index = group.index
        mine = self.hold[index]
        theirs = None if self.alone else self.peer.states[index]
        if mine is Hold.HELD:
            if self.peer.alive and theirs is not None and theirs.may_run and \
                    index not in self.split:
                self.split.add(index)
                return Decision((Announce(group),),
                                f"split brain on {group}: both nodes run it; keeping it here "
                                f"({self._keeper_reason(group)}), announcing its addresses",
                                "warning")
            if index in self.split and (theirs is None or not theirs.may_run):
                self.split.discard(index)
                self.returned.discard(index)
                return Decision((Announce(group),),
                                f"split brain on {group} settled: the peer stopped it; "
                                "announcing its addresses again")
            if index in self.returned and self.peer.alive and theirs is not None and \
                    not theirs.may_run:
                self.returned.discard(index)
                return Decision((Announce(group),),
                                f"peer {self.peer.name} is back and does not run {group}: "
                                "announcing its addresses again")
            return None
        if mine is Hold.STUCK:
            return None
        peer_down = self.alone or not self.peer.alive or self.peer.gone
        if mine is Hold.FAILED:
            failed = self.failed_at.get(index)
            # a start that failed before the peer's latest death or shutdone (a takeover
            # refused while the peer's address still answered) says nothing about now: retry
            lost = max((t for t in (self.peer_died_at, self.peer_left_at) if t is not None),
                       default=None)
            retry_now = peer_down and lost is not None and failed is not None and lost > failed
            if failed is not None and now - failed < self.settings.failed_retry \
                    and not retry_now:
                return None
        if peer_down and self._delaying(now):
            return None
        if not peer_down:
            if theirs is None:
                if why is not Cause.NEGOTIATION_TIMEOUT:
                    return None
            elif theirs.may_run:
                return None  # the giver stops first
        elif self.peer_may_run(index) and not self._fence_allows():
            fence_needed.append(group)
            return None
        self._set(index, "start", why)
        if why in (Cause.PEER_DEAD, Cause.PEER_NEVER_HEARD):
            reason = (f"peer {self.peer.name} "
                      + ("dead" if why is Cause.PEER_DEAD else "not heard within initdead")
                      + f": taking over group {group}")
        else:
            reason = f"starting group {group} ({why})"
        return Decision((StartGroup(group),), reason)

    def _give(self, group: Group, why: str) -> Decision:
        self._set(group.index, "stop")
        self.returned.discard(group.index)
        self.answered.discard(group.index)
        if why is Cause.SPLIT_BRAIN:
            self.split.discard(group.index)
            reason = (f"split brain on {group}: the peer keeps it "
                      f"({self._keeper_reason(group)}); stopping it here")
            return Decision((StopGroup(group, handoff=True),), reason, "warning")
        # every stop that leaves the group to the peer hands its addresses off: a peer that
        # kept them through a split starts nothing and says nothing (heartbeat 3.0.6 agrees
        # to take back "foreign" groups it still holds), and the clients would go on asking
        # this node until their ARP entries expire; a peer that starts them announces them
        # itself, and the hand-off, finding it or nobody, changes nothing
        return Decision((StopGroup(group, handoff=True),), f"stopping group {group} ({why})")

    def _cancel_start(self, group: Group, now: float) -> Decision | None:
        """A start still in progress here for a group the split-brain rule gives the
        peer (it ran the group through a partition) is abandoned, not finished: a start
        can take long (a volume refusing a second primary is retried for seconds), and
        its first resources, the addresses, would stay on both nodes meanwhile."""
        index = group.index
        if self.hold[index] is not Hold.STARTING or index in self.cancelling:
            return None
        if self.desired(index, now) != ("peer", Cause.SPLIT_BRAIN):
            return None
        self.cancelling.add(index)
        return Decision((CancelStart(group),),
                        f"split brain on {group}: the peer keeps it "
                        f"({self._keeper_reason(group)}); abandoning its start here",
                        "warning")

    def _keeper_reason(self, group: Group) -> str:
        mine, theirs = self.my_ping, self.peer.ping
        if self.settings.ping_configured and mine is not None and theirs is not None \
                and mine != theirs:
            return f"ping reach {mine} here vs {theirs} there"
        return f"home node {group.home}"

    def _delaying(self, now: float) -> bool:
        """vigil.cf's takeover_delay: wait a little longer after the peer died."""
        delay = self.settings.takeover_delay
        return (delay > 0 and not self.alone and not self.peer.gone
                and self.peer_died_at is not None and now - self.peer_died_at < delay)

    def _fence_allows(self) -> bool:
        if not self.settings.fencing:
            return True
        if self.fencing is Fencing.DONE:
            return True
        return self.fencing is Fencing.FAILED and self.settings.fence_policy == "ignore"

    def _fence(self, groups: list[Group], now: float) -> list[Decision]:
        if not self.settings.fencing:
            return []
        if self.fencing is Fencing.RUNNING:
            return []
        if self.fencing is Fencing.FAILED and self.fence_failed_at is not None and \
                now - self.fence_failed_at < self.settings.fence_retry:
            return []
        self.fencing = next_fencing(self.fencing, "fence")
        return [Decision((Fence(self.peer.name),),
                         f"peer {self.peer.name} may still run {_ids(groups)}: fencing it "
                         "before taking over", "warning")]

    def no_fencing_warning(self) -> Decision | None:
        """Heartbeat's warning when a takeover happens without any fencing configured."""
        if self.settings.fencing or self._warned_no_fencing:
            return None
        self._warned_no_fencing = True
        return Decision((), "no fencing configured: shared data is not protected against "
                        "a peer that only looks dead", "warning")

    # -- time -----------------------------------------------------------------------------------
    def next_deadline(self, now: float) -> float | None:
        """The next instant a decision can change without any input (never in the past)."""
        times = []
        if self.phase is Phase.READY and self.ready_at is not None and self.peer.alive and \
                any(s is None for s in self.peer.states):
            times.append(self.ready_at + self.settings.negotiation_timeout)
        if self.worse_since is not None:
            times.append(self.worse_since + self.settings.ipfail_delay)
        if self.peer_died_at is not None and not self.peer.alive:
            times.append(self.peer_died_at + self.settings.takeover_delay)
        for failed in self.failed_at.values():
            times.append(failed + self.settings.failed_retry)
        if self.fencing is Fencing.FAILED and self.fence_failed_at is not None:
            times.append(self.fence_failed_at + self.settings.fence_retry)
        timeout = self.settings.handover_timeout
        times += [self.released_at[i] + timeout for i in self.give if i in self.released_at]
        times += [since + timeout for since in self.want_since.values()]
        if self.refresh_at is not None:
            times.append(self.refresh_at)
        future = [t for t in times if t > now]
        return min(future) if future else None

    # -- what the peer should know --------------------------------------------------------------
    def gossip(self) -> dict[str, object]:
        """Our state as vigil's status fields carry it."""
        return {
            "phase": self.phase.value,
            "groups": "".join(h.value for h in self.hold),
            "give": "".join("1" if g.index in self.give else "0" for g in self.groups),
            "want": "".join("1" if g.index in self.want else "0" for g in self.groups),
            "ping": self.my_ping,
        }

    def heartbeat_rsc_hold(self) -> str:
        """Our holdings in heartbeat's terms: none | local | foreign | all."""
        local = any(self.hold[g.index].may_run for g in self.groups if self.home_is_me(g))
        foreign = any(self.hold[g.index].may_run for g in self.groups
                      if not self.home_is_me(g))
        return {(False, False): "none", (True, False): "local", (False, True): "foreign",
                (True, True): "all"}[(local, foreign)]

    def stable(self) -> bool:
        """No action in flight (heartbeat's `isstable`: requests may be pending)."""
        return self.phase is Phase.READY and not any(h.busy for h in self.hold)

    def _peer_state_name(self, index: int) -> str | None:
        state = None if self.alone else self.peer.states[index]
        return state.name.lower() if state is not None else None

    def snapshot(self) -> dict[str, object]:
        return {
            "phase": self.phase.value,
            "groups": [
                {"key": g.key, "home": g.home, "state": self.hold[g.index].name.lower(),
                 "why": self.why[g.index],
                 "peer_state": self._peer_state_name(g.index),
                 "handing_over": g.index in self.give, "asked_for": g.index in self.want}
                for g in self.groups
            ],
            "fencing": self.fencing.value,
            "ping_reach": self.my_ping,
            "peer_ping_reach": self.peer.ping,
        }


def parse_gossip(count: int, groups: str | None, give: str | None,
                 want: str | None) -> tuple[list[Hold | None] | None, set[int], set[int]]:
    """vigil's status fields -> peer states and intents (None if the list does not fit)."""
    states: list[Hold | None] | None = None
    if groups is not None and len(groups) == count:
        try:
            states = [Hold(c) for c in groups]
        except ValueError:
            states = None

    def mask(text: str | None) -> set[int]:
        if text is None or len(text) != count:
            return set()
        return {i for i, c in enumerate(text) if c == "1"}

    return states, mask(give), mask(want)


def replace_settings(core: FailoverCore, **changes: object) -> None:
    """Reload: new timings or policies, same groups (a group change needs a restart)."""
    core.settings = dataclasses.replace(core.settings, **changes)  # type: ignore[arg-type]
