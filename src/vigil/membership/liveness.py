"""Who is alive: per node and per link, with heartbeat's timers, as a pure core.

Inputs are "a fresh packet from node N arrived on link L at `now`" and
"the time is `now`"; outputs are events (node dead, node back, link dead,
link up, late heartbeat) and the next instant something can happen.

* A node is dead when no fresh packet arrived from it on *any* link for its
  deadtime: the deadtime it advertises in its heartbeats (`dt`), else ours.
  Until every node has been heard from once (or declared dead), `initdead`
  applies instead, counted from our start: networks can be slow to come up.
* A link of a node is dead when nothing (fresh or duplicate) came over it
  for that deadtime; a node with one live link is alive.
* A heartbeat later than `warntime` after the previous one is reported with
  its gap ("late heartbeat"): the tool to tune deadtime, as in heartbeat.
* Ping nodes (and ping groups: alive when any member answers) are nodes
  whose packets are echo replies; they die after `deadping`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from vigil.config.hacf import (
    DEFAULT_DEADTIME,
    DEFAULT_KEEPALIVE,
    computed_initdead,
    default_warntime,
)
from vigil.errors import VigilError


class NodeKind(enum.Enum):
    NORMAL = "normal"
    PING = "ping"


@dataclass(frozen=True)
class Timings:
    """Heartbeat's timers in seconds (ha.cf's keepalive, deadtime, ...)."""

    keepalive: float = DEFAULT_KEEPALIVE
    deadtime: float = DEFAULT_DEADTIME
    warntime: float | None = None
    initdead: float | None = None
    deadping: float | None = None

    def __post_init__(self) -> None:
        if self.keepalive <= 0:
            raise VigilError("keepalive must be more than 0")
        if self.deadtime <= 2 * self.keepalive:
            raise VigilError(f"deadtime ({self.deadtime:g}s) must be more than twice "
                             f"keepalive ({self.keepalive:g}s)")
        if self.initdead is not None and self.initdead < self.deadtime:
            raise VigilError(f"initdead ({self.initdead:g}s) must be at least deadtime "
                             f"({self.deadtime:g}s)")
        if self.warntime is not None and self.warntime <= 0:
            raise VigilError("warntime must be more than 0")
        if self.deadping is not None and self.deadping <= 2 * self.keepalive:
            raise VigilError("deadping must be more than twice keepalive")

    @property
    def warn(self) -> float:
        return self.warntime if self.warntime is not None else default_warntime(self.deadtime)

    @property
    def initial(self) -> float:
        """initdead as given, else heartbeat's default (the same rule ha.cf's model uses)."""
        return self.initdead if self.initdead is not None else computed_initdead(self.deadtime)

    @property
    def ping_dead(self) -> float:
        return self.deadping if self.deadping is not None else self.deadtime


class EventKind(enum.Enum):
    NODE_DEAD = "node.dead"
    NODE_ALIVE = "node.alive"
    NODE_STATUS = "node.status"
    LINK_DEAD = "link.dead"
    LINK_UP = "link.up"
    LATE_HEARTBEAT = "heartbeat.late"
    COMM_UP = "comm.up"


@dataclass(frozen=True)
class LivenessEvent:
    kind: EventKind
    node: str = ""
    link: str = ""
    #: seconds of silence (dead), gap (late), or 0
    seconds: float = 0.0
    status: str = ""
    #: a late heartbeat beyond the deadtime (the node had been, or should have been, dead)
    severe: bool = False


@dataclass
class LinkState:
    name: str
    status: str = "init"  # init | up | dead
    last_heard: float | None = None


@dataclass
class NodeState:
    name: str
    kind: NodeKind
    status: str = "init"  # init | up | active | dead | ping
    last_heard: float | None = None
    last_status: float | None = None
    advertised_deadtime: float | None = None
    links: dict[str, LinkState] = field(default_factory=dict)
    ever_heard: bool = False
    died_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.status not in ("dead", "init")


class Liveness:
    """The liveness of every other node and of each of our links to it."""

    def __init__(self, me: str, nodes: list[str], links: list[str], timings: Timings,
                 now: float, ping_nodes: Sequence[str] = ()):
        self.me = me
        self.timings = timings
        self.started = now
        self.comm_up = False
        self.link_names = list(links)
        self.nodes: dict[str, NodeState] = {}
        for name in nodes:
            if name != me:
                self.nodes[name] = NodeState(
                    name, NodeKind.NORMAL, links={ln: LinkState(ln) for ln in links})
        for name in ping_nodes:
            self.nodes[name] = NodeState(name, NodeKind.PING, links={"icmp": LinkState("icmp")})
        if not any(n.kind is NodeKind.NORMAL for n in self.nodes.values()):
            self.comm_up = True  # alone in the cluster: nothing to wait for

    # -- queries ----------------------------------------------------------------------------
    def node(self, name: str) -> NodeState:
        return self.nodes[name]

    def peers(self) -> list[NodeState]:
        return [n for n in self.nodes.values() if n.kind is NodeKind.NORMAL]

    def ping_nodes(self) -> list[NodeState]:
        return [n for n in self.nodes.values() if n.kind is NodeKind.PING]

    def pings_reachable(self) -> int | None:
        """Ping nodes answering; None until each has answered or been declared dead."""
        nodes = self.ping_nodes()
        if any(n.status == "init" for n in nodes):
            return None
        return sum(1 for n in nodes if n.status == "ping")

    def deadtime_of(self, node: NodeState) -> float:
        if node.kind is NodeKind.PING:
            return self.timings.ping_dead if self.comm_up or node.ever_heard \
                else max(self.timings.ping_dead, self.timings.initial)
        if not self.comm_up:
            return self.timings.initial
        if node.advertised_deadtime is not None:
            return node.advertised_deadtime
        return self.timings.deadtime

    def _reference(self, node: NodeState) -> float:
        return node.last_heard if node.last_heard is not None else self.started

    # -- inputs ----------------------------------------------------------------------------
    def heard(self, name: str, link: str, now: float, *, status: str | None = None,
              deadtime: float | None = None, fresh: bool = True) -> list[LivenessEvent]:
        """A packet from `name` arrived on `link` (fresh: accepted; else a duplicate)."""
        node = self.nodes.get(name)
        if node is None:
            return []
        events: list[LivenessEvent] = []
        lstate = node.links.get(link)
        if lstate is None:
            lstate = node.links[link] = LinkState(link)
        lstate.last_heard = now
        if lstate.status != "up":
            lstate.status = "up"
            events.append(LivenessEvent(EventKind.LINK_UP, name, link))
        if not fresh:
            return events
        if status is not None:
            if node.last_status is not None:
                gap = now - node.last_status
                limit = self.deadtime_of(node)
                if gap > self.timings.warn:
                    events.append(LivenessEvent(EventKind.LATE_HEARTBEAT, name, link, gap,
                                                severe=gap > limit))
            node.last_status = now
        if deadtime is not None:
            node.advertised_deadtime = deadtime
        node.last_heard = now
        node.ever_heard = True
        new_status = "ping" if node.kind is NodeKind.PING else (status or node.status)
        if new_status in ("init", "dead"):
            new_status = "up"
        if node.status == "dead" or node.status == "init":
            node.died_at = None
            events.append(LivenessEvent(EventKind.NODE_ALIVE, name, link, status=new_status))
        elif new_status != node.status:
            events.append(LivenessEvent(EventKind.NODE_STATUS, name, link, status=new_status))
        node.status = new_status
        events += self._check_comm_up()
        return events

    def forget_status_gap(self, name: str) -> None:
        """After a restart or a partition the gap between heartbeats means nothing."""
        node = self.nodes.get(name)
        if node is not None:
            node.last_status = None

    def excuse(self, seconds: float, now: float) -> None:
        """This process did not run for `seconds` (stopped, starved, suspended).

        Silence is only evidence while we were awake to hear: every clock that
        counts towards a node's or a link's death, or towards a late heartbeat,
        moves on by the time we slept, so the packets queued meanwhile are read
        before anyone is judged dead from a stale view.
        """
        if seconds <= 0:
            return

        def later(instant: float) -> float:
            return min(instant + seconds, now)

        self.started = later(self.started)
        for node in self.nodes.values():
            if node.status == "dead":
                continue
            if node.last_heard is not None:
                node.last_heard = later(node.last_heard)
            if node.last_status is not None:
                node.last_status = later(node.last_status)
            for lstate in node.links.values():
                if lstate.status != "dead" and lstate.last_heard is not None:
                    lstate.last_heard = later(lstate.last_heard)

    def tick(self, now: float) -> list[LivenessEvent]:
        events: list[LivenessEvent] = []
        for node in self.nodes.values():
            limit = self.deadtime_of(node)
            reference = self._reference(node)
            if node.status != "dead" and now - reference >= limit:
                node.status = "dead"
                node.died_at = now
                node.last_status = None
                events.append(LivenessEvent(EventKind.NODE_DEAD, node.name,
                                            seconds=now - reference))
            for lstate in node.links.values():
                heard = lstate.last_heard if lstate.last_heard is not None else self.started
                if lstate.status != "dead" and now - heard >= limit:
                    lstate.status = "dead"
                    events.append(LivenessEvent(EventKind.LINK_DEAD, node.name, lstate.name,
                                                now - heard))
        events += self._check_comm_up()
        return events

    def _check_comm_up(self) -> list[LivenessEvent]:
        if self.comm_up:
            return []
        if all(n.ever_heard or n.status == "dead" for n in self.peers()):
            self.comm_up = True
            return [LivenessEvent(EventKind.COMM_UP)]
        return []

    def next_deadline(self) -> float:
        deadlines = []
        for node in self.nodes.values():
            limit = self.deadtime_of(node)
            if node.status != "dead":
                deadlines.append(self._reference(node) + limit)
            for lstate in node.links.values():
                if lstate.status != "dead":
                    heard = lstate.last_heard if lstate.last_heard is not None else self.started
                    deadlines.append(heard + limit)
        return min(deadlines) if deadlines else float("inf")
