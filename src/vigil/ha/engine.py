"""A whole heartbeat node as a pure object: datagrams and time in, datagrams and actions out.

`NodeEngine` joins the membership pieces (codec, receive rules, transmit
history, liveness) to the failover core, and speaks heartbeat 3's protocol:
status every keepalive (with vigil's gossip fields), ACKs, retransmissions,
`reqnodes`/`repnodes`, `starting`/`resource` for heartbeat peers, `shutdone`.
It never reads a clock, opens a socket or runs a program: the daemon feeds
it and carries out what it returns, and the simulator runs many of them on a
fake clock.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.errors import UsageError
from vigil.ha.decision import (
    Action,
    Cause,
    Decision,
    FailoverCore,
    FailoverSettings,
    SendShutdone,
    StartGroup,
    parse_gossip,
)
from vigil.ha.groups import Group, fingerprint
from vigil.ha.state import Hold, Phase
from vigil.membership.auth import AuthError, AuthKeys
from vigil.membership.codec import Compressor, PacketCodec
from vigil.membership.compression import CompressionError
from vigil.membership.history import TransmitHistory
from vigil.membership.liveness import (
    EventKind,
    LinkState,
    Liveness,
    LivenessEvent,
    NodeKind,
    NodeState,
    Timings,
)
from vigil.membership.messages import (
    Ack,
    AskResources,
    Envelope,
    HbTakeover,
    HeartbeatMessage,
    NakRexmit,
    RepNodes,
    ReqNodes,
    Resources,
    Rexmit,
    Shutdone,
    Starting,
    Status,
)
from vigil.membership.receive import Event, ReceiveRules, Verdict
from vigil.membership.wire import WireError

#: vigil's gossip protocol version (the `vg` field of its heartbeats).
GOSSIP_VERSION = 1
#: heartbeat's flow-control protocol version (the `protocol` field).
FLOW_CONTROL_PROTOCOL = 1
#: rejected packets of one kind are logged at most this often (seconds)
DROP_LOG_INTERVAL = 5.0
#: heartbeat's wait for the answer to a standby request (STANDBY_INIT_TO_MS)
HB_STANDBY_REPLY = 10.0
#: and for the whole exchange (vigil's: a stuck exchange must not block forever)
HB_STANDBY_TOTAL = 120.0
FLIP = {"local": "foreign", "foreign": "local", "all": "all", "none": "none"}


@dataclass(frozen=True)
class NodeConfig:
    """Plain values from ha.cf, authkeys and haresources (the config layer builds it)."""

    me: str
    nodes: tuple[str, ...]
    links: tuple[str, ...]
    timings: Timings
    keys: AuthKeys
    groups: tuple[Group, ...] = ()
    auto_failback: str = "legacy"
    ping_nodes: tuple[str, ...] = ()
    hopfudge: int = 1
    max_rexmit_delay: float = 0.25
    fencing: bool = False
    fence_policy: str = "require"
    negotiation_timeout: float = 10.0
    ipfail_hold: float | None = None
    handover_timeout: float = 10.0
    failed_retry: float = 30.0
    fence_retry: float = 10.0
    takeover_delay: float = 0.0
    garp_refresh: float = 0.0
    #: compress big outgoing messages as heartbeat's `traditional_compression on` does
    compressor: Compressor | None = None

    def __post_init__(self) -> None:
        if self.me not in self.nodes:
            raise UsageError(f"this node ({self.me}) is not among the nodes "
                             f"({' '.join(self.nodes)})")
        if len(set(self.nodes)) > 2:
            raise UsageError("vigil runs haresources groups on two nodes; "
                             f"{len(set(self.nodes))} are configured")
        for group in self.groups:
            if group.home not in self.nodes:
                raise UsageError(f"group {group} names node {group.home}, "
                                 "which is not a cluster node")

    @property
    def peer(self) -> str | None:
        others = [n for n in self.nodes if n != self.me]
        return others[0] if others else None

    def failover_settings(self) -> FailoverSettings:
        return FailoverSettings(
            me=self.me, peer=self.peer, groups=self.groups, auto_failback=self.auto_failback,
            keepalive=self.timings.keepalive, fencing=self.fencing,
            fence_policy=self.fence_policy, negotiation_timeout=self.negotiation_timeout,
            ipfail_hold=self.ipfail_hold, handover_timeout=self.handover_timeout,
            failed_retry=self.failed_retry, fence_retry=self.fence_retry,
            takeover_delay=self.takeover_delay, ping_configured=bool(self.ping_nodes),
            garp_refresh=self.garp_refresh)


@dataclass(frozen=True)
class LogLine:
    event: str
    level: str = "info"
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Output:
    packets: list[bytes] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    exit: bool = False
    #: peer -> (generation, highest seq) to keep on disk, so replays stay refused after a
    #: restart of this daemon
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def log(self, event: str, level: str = "info", **fields: Any) -> None:
        self.logs.append(LogLine(event, level, fields))


#: how far beyond the wall clock a peer's generation may be (a year of seconds)
MAX_GENERATION_AHEAD = 366 * 24 * 3600
#: a peer's sequence mark goes to disk at most this often while only statuses arrive (any
#: other message, and any new generation, is marked at once: those are what a replay abuses)
MARK_INTERVAL = 1.0


class NodeEngine:
    """One node's protocol and decisions. Pure: every method takes `now`."""

    def __init__(self, config: NodeConfig, *, uuid: bytes, generation: int, now: float,
                 wall_offset: float = 0.0, rng: random.Random | None = None,
                 known_peers: Mapping[str, tuple[int, int]] | None = None):
        self.config = config
        self.me = config.me
        self.uuid = uuid
        self.generation = generation
        self.wall_offset = wall_offset
        self.codec = PacketCodec(config.keys, config.compressor)
        #: a key of authkeys authenticates nothing (crc): anyone can make a packet pass
        self.forgeable = any(not key.method.needs_key for key in config.keys.keys.values())
        self.rng = rng or random.Random()
        self.rules = ReceiveRules(self.me, config.max_rexmit_delay, self.rng)
        self.history = TransmitHistory(config.max_rexmit_delay)
        self.liveness = Liveness(self.me, list(config.nodes), list(config.links),
                                 config.timings, now, list(config.ping_nodes))
        self.core = FailoverCore(config.failover_settings(), now)
        self.fingerprint = fingerprint(config.groups)
        self.seq = 0
        self.next_status = now
        self.sent_version = -1
        self.sent_rsc: tuple[str, bool] | None = None
        self.peer_is_vigil = False
        self.peer_generation: int | None = None
        self.uuids: dict[str, bytes] = {}
        self.counters: Counter[str] = Counter()
        self.load: str | None = None
        self.started = now
        self._drop_logged: dict[str, float] = {}
        self._mismatch_logged = False
        self.done = False
        # heartbeat peers: its standby exchange (ask_resources me/other/done, hb_takeover)
        self.hb_giving: dict[str, tuple[str, float]] = {}  # our class -> (state, since)
        self.hb_taking: dict[str, tuple[str, str, float]] = {}  # ours -> (state, theirs, t)
        self.hb_peer_give: set[int] = set()
        self.hb_peer_want: set[int] = set()
        self._hb_ask: set[str] = set()
        #: heartbeat's `other_is_stable`: the peer's last resource message said it is done
        #: with its transitions, and no standby exchange has unsettled it since. heartbeat
        #: ignores a standby request while the other side is in flux; so does vigil, or it
        #: would agree to an exchange its heartbeat peer has itself refused
        self.hb_peer_stable = False
        self._marked_at: dict[str, float] = {}
        for name, (known_generation, known_seq) in (known_peers or {}).items():
            if name.lower() in self.liveness.nodes and name.lower() != self.me:
                self.rules.restore(name.lower(), known_generation, known_seq)

    # -- sending -------------------------------------------------------------------------------
    def _send(self, message: HeartbeatMessage, now: float, out: Output) -> None:
        sequenced = message.sequenced
        if sequenced:
            self.seq += 1
        dest = getattr(message, "dest", None)
        env = Envelope(
            src=self.me, hg=self.generation, ts=int(now + self.wall_offset), srcuuid=self.uuid,
            seq=self.seq if sequenced else None, ld=self.load if sequenced else None,
            ttl=self.config.hopfudge + len(self.liveness.nodes) + 1,
            destuuid=self.uuids.get(dest) if dest else None)
        datagram = self.codec.pack(message.replace(env=env))
        if sequenced:
            self.history.record(self.seq, datagram)
        self.counters["sent"] += 1
        out.packets.append(datagram)

    def _status(self, now: float, out: Output) -> None:
        gossip = self.core.gossip()
        self._send(Status(
            env=Envelope(src=self.me, hg=0, ts=0),
            status="active" if self.liveness.comm_up else "up",
            deadtime_ms=round(self.config.timings.deadtime * 1000),
            protocol=FLOW_CONTROL_PROTOCOL, vigil=GOSSIP_VERSION, phase=str(gossip["phase"]),
            rsc=self.fingerprint, groups=str(gossip["groups"]), give=str(gossip["give"]),
            want=str(gossip["want"]), ping=gossip["ping"]  # type: ignore[arg-type]
        ), now, out)
        self.sent_version = self.core.version
        self.next_status = now + self.config.timings.keepalive

    def _resources(self, now: float, out: Output) -> None:
        rsc = (self.core.heartbeat_rsc_hold(), self.core.stable())
        self._send(Resources(env=Envelope(src=self.me, hg=0, ts=0), rsc_hold=rsc[0],
                             rtype="full", isstable="1" if rsc[1] else "0"), now, out)
        self.sent_rsc = rsc

    # -- inputs --------------------------------------------------------------------------------
    def start(self, now: float) -> Output:
        """The first heartbeat goes out at once."""
        out = Output()
        out.log("heartbeat.start", node=self.me, generation=f"{self.generation:x}",
                nodes=" ".join(self.config.nodes), links=" ".join(self.config.links))
        self._status(now, out)
        self._settle(now, out)
        return out

    def adopt(self, index: int) -> Output:
        out = Output()
        self._decisions([self.core.adopt(index)], out)
        return out

    def receive(self, datagram: bytes, link: str, now: float) -> Output:
        out = Output()
        try:
            decoded = self.codec.unpack(datagram)
        except AuthError as exc:
            self._reject("bad_auth", f"forged or foreign-key packet: {exc}", link, now, out)
            return out
        except CompressionError as exc:
            self._reject("bad_compression", f"compressed packet refused: {exc}", link, now,
                         out)
            return out
        except WireError as exc:
            self._reject("malformed", f"corrupt packet: {exc}", link, now, out)
            return out
        message = decoded.message
        if decoded.compressed:
            self.counters["compressed"] += 1
        source = message.env.src.lower()
        if source == self.me:
            self.counters["from_self"] += 1
            return out
        if source not in self.liveness.nodes or \
                self.liveness.node(source).kind is not NodeKind.NORMAL:
            self._reject("unknown_node", f"packet from {source}, not a node of this cluster",
                         link, now, out)
            return out
        wall = now + self.wall_offset
        if self.forgeable and message.env.hg > max(wall, self.generation) + MAX_GENERATION_AHEAD:
            # generations count daemon starts from the wall clock of the first one: one
            # beyond next year is forged (with crc anyone can), and believing it would make
            # every real packet of that node look like a replay. Only where a key forges:
            # with HMAC keys such a packet comes from the node itself, and refusing it
            # because this node's clock is set far back would make a live peer look dead
            self._reject("implausible", f"packet from {source} with generation "
                         f"{message.env.hg:x}, beyond any clock", link, now, out, "warning")
            return out
        if message.env.srcuuid:
            self.uuids[source] = message.env.srcuuid
        classified = self.rules.classify(message, now)
        if classified.verdict is Verdict.DROP:
            suspect = classified.dropped is not None and classified.dropped.suspect
            level = "warning" if suspect else "debug"
            self._reject("dropped", classified.reason, link, now, out, level)
            return out
        if classified.verdict is Verdict.DUPLICATE:
            self._liveness(self.liveness.heard(source, link, now, fresh=False), now, out)
            return out
        self.counters["accepted"] += 1
        self._mark(source, message, bool(classified.events), now, out)
        for event in classified.events:
            self._sequence_event(event, source, message, now, out)
        if classified.lost:
            first, last = classified.lost
            out.log("packets.gap", "debug", node=source, first=f"{first:x}",
                    last=f"{last:x}", count=last - first + 1)
        fresh = message.sequenced
        status = message.status if isinstance(message, Status) else None
        deadtime = (message.deadtime_ms / 1000 if isinstance(message, Status)
                    and message.deadtime_ms else None)
        self._liveness(self.liveness.heard(source, link, now, status=status, deadtime=deadtime,
                                           fresh=fresh), now, out)
        self._dispatch(message, source, now, out)
        if classified.ack is not None:
            self._send(Ack(env=Envelope(src=self.me, hg=0, ts=0), dest=source,
                           ackseq=classified.ack), now, out)
        self._settle(now, out)
        return out

    def woke(self, due: float, now: float) -> Output:
        """The shell's timer, due at `due`, ran (or was found pending) at `now`.

        Running later than half a deadtime (and than a keepalive) means the process
        did not run (stopped, starved, suspended): that time is not the peers' silence
        (Liveness.excuse). Shorter delays are scheduling jitter, counted as heartbeat
        counts them, so tight timers keep their detection time.
        """
        out = Output()
        late = now - due
        timings = self.config.timings
        if late > max(timings.keepalive, timings.deadtime / 2):
            self.liveness.excuse(late, now)
            out.log("heartbeat.stalled", "warning", seconds=round(late, 3),
                    action="silence while this process did not run is not counted")
        return out

    def ping_reply(self, pingnode: str, now: float) -> Output:
        out = Output()
        self._liveness(self.liveness.heard(pingnode, "icmp", now), now, out)
        self._settle(now, out)
        return out

    def tick(self, now: float) -> Output:
        out = Output()
        self._liveness(self.liveness.tick(now), now, out)
        for sender, first, last in self.rules.due_requests(now):
            if self.liveness.node(sender).alive:
                out.log("packets.missing", "warning", node=sender, first=f"{first:x}",
                        last=f"{last:x}", action="asking for retransmission")
                self._send(Rexmit(env=Envelope(src=self.me, hg=0, ts=0), dest=sender,
                                  firstseq=first, lastseq=last), now, out)
        if now >= self.next_status and not self.done:
            self._status(now, out)
        self._settle(now, out)
        return out

    def completed(self, action: Action, ok: bool, now: float) -> Output:
        out = Output()
        self._decisions(self.core.action_done(action, ok, now), out)
        self._settle(now, out)
        return out

    def holders_answered(self, index: int, now: float) -> Output:
        """Another host answered for the addresses of a group held here (`ProbeHolders`)."""
        return self._settled_if_changed(self.core.peer_answers(index, now), now)

    def group_readiness(self, index: int, unready: str | None, now: float) -> Output:
        """Whether a group not running here could start here (None), or why not."""
        return self._settled_if_changed(self.core.readiness(index, unready), now)

    def _settled_if_changed(self, decisions: list[Decision], now: float) -> Output:
        """An input that changed nothing (no decision) needs no new round of deciding."""
        out = Output()
        if decisions:
            self._decisions(decisions, out)
            self._settle(now, out)
        return out

    def group_failed(self, index: int, reason: str, now: float) -> Output:
        """Resource monitoring gave up on a group running here."""
        out = Output()
        self._decisions(self.core.group_failed(index, reason, now), out)
        self._settle(now, out)
        return out

    def command(self, name: str, now: float, which: str = "all") -> Output:
        """An operator's request: standby, takeover, shutdown."""
        out = Output()
        if name == "standby":
            self._decisions([self.core.standby(which, now)], out)
        elif name == "takeover":
            self._decisions([self.core.takeover(which, now)], out)
            if not self.peer_is_vigil and self.core.peer.alive:
                # heartbeat hands groups over only through its own standby: ask for it
                self._send(HbTakeover(env=Envelope(src=self.me, hg=0, ts=0),
                                      rsc_hold="local" if which == "failback" else which),
                           now, out)
        elif name == "shutdown":
            self._decisions(self.core.shutdown(now), out)
        elif name == "cleanup":
            self._decisions(self._cleanup(which), out)
        else:
            raise UsageError(f"unknown command {name!r}")
        self._settle(now, out)
        return out

    def _cleanup(self, which: str) -> list[Decision]:
        """`vigil cleanup`: the operator says groups whose stop (or start) failed here are
        down after all; `which` is a group's key or "all" (every group that needs it)."""
        groups = self.core.groups
        if which == "all":
            chosen = [g for g in groups if self.core.hold[g.index].needs_clearing]
            if not chosen:
                return [Decision((), "cleanup: no group here failed to stop or start")]
        else:
            chosen = [g for g in groups if g.key == which]
            if not chosen:
                raise UsageError(f"cleanup: no group {which!r} (groups: "
                                 + ", ".join(g.key for g in groups) + ")")
        return [self.core.clear(g.index) for g in chosen]

    def reconfigure(self, config: NodeConfig, now: float) -> Output:
        """Reload: new timings, keys, media, ping nodes, policies; groups keep running.

        A different node list or group list cannot be applied to running groups
        and is refused (restart the daemon for that).
        """
        out = Output()
        old = self.config
        if config.me != old.me or set(config.nodes) != set(old.nodes):
            out.log("config.refused", "error", reason="the node list changed: restart "
                    "vigil heartbeat to apply it")
            return out
        if fingerprint(config.groups) != self.fingerprint:
            out.log("config.refused", "error", reason="haresources changed: restart vigil "
                    "heartbeat (after the other node) to apply it")
            return out
        changed = [name for name in ("timings", "keys", "links", "auto_failback", "ping_nodes",
                                     "hopfudge", "max_rexmit_delay", "fencing", "fence_policy",
                                     "takeover_delay", "garp_refresh")
                   if getattr(config, name) != getattr(old, name)]
        self.config = config
        self.codec.keys = config.keys
        self.liveness.timings = config.timings
        self.rules.max_rexmit_delay = config.max_rexmit_delay
        self.history.max_rexmit_delay = config.max_rexmit_delay
        for node in self.liveness.peers():
            for link in config.links:
                node.links.setdefault(link, LinkState(link, last_heard=now))
            for link in [ln for ln in node.links if ln not in config.links]:
                del node.links[link]
        self.liveness.link_names = list(config.links)
        for name in config.ping_nodes:
            if name not in self.liveness.nodes:
                self.liveness.nodes[name] = NodeState(
                    name, NodeKind.PING, last_heard=now,
                    links={"icmp": LinkState("icmp", last_heard=now)})
        for name in [n.name for n in self.liveness.ping_nodes()]:
            if name not in config.ping_nodes:
                del self.liveness.nodes[name]
        self.core.settings = config.failover_settings()
        if config.garp_refresh != old.garp_refresh:
            self.core.refresh_at = None  # the next round is counted from now on
        if config.timings.keepalive < old.timings.keepalive:
            self.next_status = min(self.next_status, now + config.timings.keepalive)
        self.core.set_ping(self.liveness.pings_reachable() if config.ping_nodes else None, now)
        out.log("config.reloaded", changed=" ".join(changed) or "nothing")
        self._status(now, out)  # the peer learns the new deadtime (dt) at once
        self._settle(now, out)
        return out

    # -- internals -----------------------------------------------------------------------------
    def _reject(self, counter: str, reason: str, link: str, now: float, out: Output,
                level: str = "warning") -> None:
        self.counters[counter] += 1
        last = self._drop_logged.get(counter)
        if last is None or now - last >= DROP_LOG_INTERVAL:
            self._drop_logged[counter] = now
            out.log("packet.rejected", level, kind=counter, link=link, reason=reason,
                    count=self.counters[counter])

    def _mark(self, source: str, message: HeartbeatMessage, new_generation: bool,
              now: float, out: Output) -> None:
        if not message.sequenced:
            return
        due = (new_generation or not isinstance(message, Status)
               or now - self._marked_at.get(source, -MARK_INTERVAL) >= MARK_INTERVAL)
        mark = self.rules.mark(source) if due else None
        if mark is not None:
            out.marks[source] = mark
            self._marked_at[source] = now

    def _sequence_event(self, event: Event, source: str, message: HeartbeatMessage,
                        now: float, out: Output) -> None:
        if event is Event.RESTART:
            out.log("peer.restart", "warning", node=source, generation=f"{message.env.hg:x}")
            self.history.forget_node(source)
            self.liveness.forget_status_gap(source)
            self._hb_forget()  # a standby exchange belongs to the process that began it
            self._decisions(self.core.peer_restarted(now), out)
        elif event is Event.PARTITION_HEALED:
            out.log("peer.returned", "critical", node=source,
                    reason="back after a partition (same generation): deadtime may be "
                    "too small or the links were cut")
            self.liveness.forget_status_gap(source)
            self._decisions(self.core.peer_returned(now), out)
        elif event is Event.FIRST_CONTACT:
            out.log("peer.contact", node=source, generation=f"{message.env.hg:x}")
        self.peer_generation = message.env.hg

    def _dispatch(self, message: HeartbeatMessage, source: str, now: float,
                  out: Output) -> None:
        if isinstance(message, Status):
            if message.vigil is not None:
                self.peer_is_vigil = True
                mismatch = message.rsc != self.fingerprint
                if mismatch and not self._mismatch_logged:
                    self._mismatch_logged = True
                    out.log("haresources.mismatch", "error", node=source,
                            reason="the peer's haresources differs from ours: groups are "
                            "not moved to it")
                states, give, want = parse_gossip(len(self.config.groups), message.groups,
                                                  message.give, message.want)
                self.core.peer_info(now, states=None if mismatch else states, give=give,
                                    want=want, phase=message.phase, ping=message.ping,
                                    mismatch=mismatch)
        elif isinstance(message, Resources):
            if not self.peer_is_vigil:
                self._heartbeat_resources(message, source, now)
        elif isinstance(message, Shutdone):
            self._hb_forget()
            self._decisions(self.core.peer_gone(now), out)
        elif isinstance(message, Starting):
            self.hb_peer_stable = False  # it asks what runs here: it is starting
            if self.liveness.comm_up:
                self._resources(now, out)
        elif isinstance(message, ReqNodes):
            nodes = " ".join(self.config.nodes) + " "
            self._send(RepNodes(env=Envelope(src=self.me, hg=0, ts=0), dest=source,
                                nodelist=nodes, delnodelist=" "), now, out)
        elif isinstance(message, Ack):
            self.history.ack(source, message.ackseq)
        elif isinstance(message, Rexmit):
            answer = self.history.answer(source, message.firstseq, message.lastseq, now)
            out.packets.extend(answer.resend)
            for seq in answer.nak:
                self._send(NakRexmit(env=Envelope(src=self.me, hg=0, ts=0), firstseq=seq,
                                     dest=source, info="seqno not found"), now, out)
        elif isinstance(message, NakRexmit):
            out.log("packet.irretrievable", "warning", node=source, seq=f"{message.firstseq:x}")
        elif isinstance(message, AskResources):
            if not self.peer_is_vigil:
                self._heartbeat_standby(message, now, out)
        elif isinstance(message, HbTakeover) and not self.peer_is_vigil:
            wanted = self._groups_of(FLIP.get(message.rsc_hold or "all", "all"))
            self.hb_peer_want |= wanted
            self._peer_requests(now)
            out.log("takeover.requested", node=source, groups=message.rsc_hold or "all")

    # -- heartbeat's standby exchange ----------------------------------------------------------
    def _class_of(self, group: Group) -> str:
        return "local" if group.home == self.me else "foreign"

    def _groups_of(self, cls: str) -> set[int]:
        return {g.index for g in self.config.groups
                if cls == "all" or self._class_of(g) == cls}

    def _handover_agreed(self) -> set[int] | None:
        """Voluntary hand-overs to a heartbeat peer wait for its "other" (it takes them):
        the groups it agreed to take, or None when there is nobody to ask."""
        if self.peer_is_vigil or not self.core.peer.alive:
            return None
        return {g.index for g in self.config.groups
                if self.hb_giving.get(self._class_of(g), ("", 0.0))[0]
                in ("permitted", "released")}

    def _ask_for_handovers(self) -> None:
        """Ask the heartbeat peer to take the classes of groups the core held back."""
        for index in self.core.awaiting_permission:
            cls = self._class_of(self.config.groups[index])
            if not self.hb_giving.get(cls, ("", 0.0))[0]:
                self._hb_ask.add(cls)

    def _ask(self, cls: str, info: str, now: float, out: Output) -> None:
        self._send(AskResources(env=Envelope(src=self.me, hg=0, ts=0), rsc_hold=cls,
                                info=info), now, out)

    def _heartbeat_standby(self, message: AskResources, now: float, out: Output) -> None:
        hold, info = message.rsc_hold or "all", message.info
        if info == "other":
            state = self.hb_giving.get(hold)
            if state is not None and state[0] == "asked":
                self.hb_giving[hold] = ("permitted", now)
                self.hb_peer_stable = False  # it is about to take them
                out.log("standby.agreed", node=self.config.peer, groups=hold,
                        reason="the heartbeat peer takes them: stopping them here")
        elif info == "me":
            ours = FLIP.get(hold, "all")
            if not self.hb_peer_stable:
                out.log("standby.ignored", "warning", node=self.config.peer, groups=ours,
                        reason="the heartbeat peer is in flux (its last resource message "
                        "did not say it is stable), as heartbeat itself would answer")
            elif self.core.phase is Phase.READY and self.core.stable() \
                    and not self.hb_taking and not self.hb_giving:
                self._ask(hold, "other", now, out)
                self.hb_taking[ours] = ("agreed", hold, now)
                self.hb_peer_stable = False  # it is giving them up
                out.log("standby.accepted", node=self.config.peer, groups=ours,
                        reason="the heartbeat peer hands them over")
            else:
                out.log("standby.ignored", "warning", node=self.config.peer, groups=ours,
                        reason="a resource transition is in progress here")
        elif info == "done":
            for ours, (taking, theirs, _) in list(self.hb_taking.items()):
                if taking == "agreed":  # the peer released them: take them
                    self.hb_taking[ours] = ("acquiring", theirs, now)
                    self.hb_peer_give |= self._groups_of(ours)
            for cls, (giving, _) in list(self.hb_giving.items()):
                if giving == "released":  # the peer acquired them: exchange over
                    del self.hb_giving[cls]
                    self.sent_rsc = None  # our resource message follows, as heartbeat's
            self._peer_requests(now)

    def _peer_requests(self, now: float) -> None:
        self.core.peer_info(now, states=self.core.peer.states, phase=self.core.peer.phase,
                            give=self.hb_peer_give, want=self.hb_peer_want)

    def _hb_progress(self, now: float, out: Output) -> None:
        """After deciding: ask, announce releases and acquisitions, expire what hangs."""
        if self.peer_is_vigil:
            return
        for cls in sorted(self._hb_ask):
            self._ask(cls, "me", now, out)
            self.hb_giving[cls] = ("asked", now)
            out.log("standby.asked", node=self.config.peer, groups=cls,
                    reason="asking the heartbeat peer to take them")
        self._hb_ask.clear()
        for cls, (state, since) in list(self.hb_giving.items()):
            if state == "permitted" and not any(self.core.hold[i].may_run
                                                 for i in self._groups_of(cls)):
                self._ask(cls, "done", now, out)
                self.hb_giving[cls] = ("released", now)
            elif (state == "asked" and now - since >= HB_STANDBY_REPLY) or \
                    now - since >= HB_STANDBY_TOTAL:
                del self.hb_giving[cls]
                out.log("standby.timeout", "warning", node=self.config.peer, groups=cls,
                        state=state)
        for ours, (state, theirs, since) in list(self.hb_taking.items()):
            groups = self._groups_of(ours)
            if state == "acquiring" and all(self.core.hold[i] in (Hold.HELD, Hold.FAILED,
                                                                  Hold.STUCK)
                                            for i in groups):
                self._ask(theirs, "done", now, out)
                del self.hb_taking[ours]
                # heartbeat ends every exchange with its resource message, changed or
                # not: its peer counts it in flux until that message says it is stable
                self.sent_rsc = None
                self.hb_peer_give -= groups
                self._peer_requests(now)
            elif now - since >= HB_STANDBY_TOTAL:
                del self.hb_taking[ours]
                self.hb_peer_give -= groups
                self._peer_requests(now)
        held_there = {i for i, s in enumerate(self.core.peer.states) if s is Hold.HELD}
        if self.hb_peer_want & held_there:
            self.hb_peer_want -= held_there
            self._peer_requests(now)

    def _hb_forget(self) -> None:
        """Drop the standby exchange's state: what one heartbeat process agreed to is void
        once it died, shut down or restarted (a restarted one acts on nothing it said)."""
        self.hb_giving.clear()
        self.hb_taking.clear()
        self.hb_peer_give.clear()
        self.hb_peer_want.clear()
        self._hb_ask.clear()
        self.hb_peer_stable = False

    def _heartbeat_resources(self, message: Resources, source: str, now: float) -> None:
        """A heartbeat peer's `resource` message, in its own terms (local = its home groups)."""
        hold = message.rsc_hold
        theirs_local = hold in ("local", "all")
        theirs_foreign = hold in ("foreign", "all")
        states: list[Hold | None] = []
        for group in self.config.groups:
            runs = theirs_local if group.home == source else theirs_foreign
            states.append(Hold.HELD if runs else Hold.RELEASED)
        phase = "ready" if message.isstable in (None, "1") else "init"
        if message.isstable is not None:  # none from heartbeat's takeover scripts
            self.hb_peer_stable = message.isstable == "1"
        self.core.peer_info(now, states=states, phase=phase, give=self.hb_peer_give,
                            want=self.hb_peer_want)

    def _liveness(self, events: list[LivenessEvent], now: float, out: Output) -> None:
        for event in events:
            node = self.liveness.nodes.get(event.node)
            ping = node is not None and node.kind is NodeKind.PING
            if event.kind is EventKind.NODE_DEAD:
                if ping:
                    out.log("ping.dead", "warning", node=event.node,
                            silent=f"{event.seconds:.3f}s")
                    self.core.set_ping(self.liveness.pings_reachable(), now)
                    continue
                out.log("peer.dead", "warning", node=event.node,
                        silent=f"{event.seconds:.3f}s",
                        deadtime=f"{self.liveness.deadtime_of(node):g}s")  # type: ignore[arg-type]
                self.rules.node_dead(event.node)
                self.history.forget_node(event.node)
                self._hb_forget()
                self._decisions(self.core.peer_dead(now), out)
            elif event.kind is EventKind.NODE_ALIVE:
                if ping:
                    out.log("ping.alive", node=event.node)
                    self.core.set_ping(self.liveness.pings_reachable(), now)
                    continue
                out.log("peer.alive", node=event.node, status=event.status, link=event.link)
                self._decisions(self.core.peer_alive(now), out)
            elif event.kind is EventKind.NODE_STATUS:
                out.log("peer.status", node=event.node, status=event.status)
            elif event.kind is EventKind.LINK_DEAD:
                if not ping:
                    out.log("link.dead", "warning", node=event.node, link=event.link,
                            silent=f"{event.seconds:.3f}s")
            elif event.kind is EventKind.LINK_UP:
                if not ping:
                    out.log("link.up", node=event.node, link=event.link)
            elif event.kind is EventKind.LATE_HEARTBEAT:
                out.log("heartbeat.late", "error" if event.severe else "warning",
                        node=event.node, gap=f"{event.seconds * 1000:.0f}ms",
                        warntime=f"{self.config.timings.warn * 1000:.0f}ms")
            elif event.kind is EventKind.COMM_UP:
                self._decisions(self.core.comm_up(now), out)
                if self.core.peer.alive:
                    self._send(Starting(env=Envelope(src=self.me, hg=0, ts=0)), now, out)
        if self.config.ping_nodes and any(
                e.kind in (EventKind.NODE_DEAD, EventKind.NODE_ALIVE) for e in events):
            self.core.set_ping(self.liveness.pings_reachable(), now)

    def _decisions(self, decisions: list[Decision], out: Output) -> None:
        for decision in decisions:
            for action in decision.actions:
                if isinstance(action, SendShutdone):
                    continue
                out.actions.append(action)
            out.log("ha.decision", decision.level, reason=decision.reason)

    def _settle(self, now: float, out: Output) -> None:
        """Decide, then tell the peer at once if anything it should know changed."""
        if self.done:
            return
        decisions = self.core.decide(now, self._handover_agreed())
        self._ask_for_handovers()
        if any(isinstance(a, StartGroup) and self.core.why[a.group.index] is Cause.PEER_DEAD
               for d in decisions for a in d.actions):
            warning = self.core.no_fencing_warning()
            if warning is not None:
                decisions.append(warning)
        self._decisions(decisions, out)
        self._hb_progress(now, out)
        if self.core.version != self.sent_version:
            self._status(now, out)
        rsc = (self.core.heartbeat_rsc_hold(), self.core.stable())
        if self.core.phase is not Phase.INIT and rsc != self.sent_rsc:
            self._resources(now, out)
        if any(isinstance(a, SendShutdone) for d in decisions for a in d.actions):
            self._send(Shutdone(env=Envelope(src=self.me, hg=0, ts=0)), now, out)
            self.done = True
            out.exit = True

    # -- time and reports ----------------------------------------------------------------------
    def next_deadline(self, now: float) -> float:
        times = [self.next_status, self.liveness.next_deadline()]
        rexmit = self.rules.next_deadline()
        if rexmit is not None:
            times.append(rexmit)
        core = self.core.next_deadline(now)
        if core is not None:
            times.append(core)
        return min(times)

    def status(self, now: float) -> dict[str, Any]:
        """What `vigil status` shows (cl_status's job), as plain data."""
        nodes = [{"name": self.me, "type": "normal", "status": "active"
                  if self.liveness.comm_up else "up", "self": True,
                  "generation": f"{self.generation:x}",
                  "links": [{"name": ln, "status": "up"} for ln in self.config.links]}]
        for node in self.liveness.nodes.values():
            entry: dict[str, Any] = {
                "name": node.name, "type": node.kind.value, "status": node.status,
                "last_heard_ago": None if node.last_heard is None
                else round(now - node.last_heard, 3),
            }
            if node.kind is NodeKind.NORMAL:
                entry["vigil"] = self.peer_is_vigil
                entry["generation"] = (f"{self.peer_generation:x}"
                                       if self.peer_generation is not None else None)
                entry["deadtime"] = self.liveness.deadtime_of(node)
                entry["links"] = [
                    {"name": ls.name, "status": ls.status,
                     "last_heard_ago": None if ls.last_heard is None
                     else round(now - ls.last_heard, 3)}
                    for ls in node.links.values()]
            nodes.append(entry)
        core = self.core.snapshot()
        groups = []
        peer_alive = self.core.peer.alive and not self.core.peer.gone
        core_groups = core["groups"]
        assert isinstance(core_groups, list)
        for info in core_groups:
            here = info["state"]
            there = info["peer_state"] if peer_alive else None
            holder = [n for n, s in ((self.me, here), (self.config.peer, there))
                      if s in ("held", "starting", "stuck")]
            last = info["peer_state"] if not peer_alive else None
            groups.append({**info, "peer_state": there, "peer_last_known": last,
                           "holder": holder})
        rejected = {k: self.counters[k] for k in ("bad_auth", "malformed", "bad_compression",
                                                  "unknown_node", "implausible")}
        rejected.update({k: self.rules.counters[k] for k in ("replayed", "stale", "bad_seq")})
        return {
            "node": self.me,
            "phase": core["phase"],
            "comm_up": self.liveness.comm_up,
            "timings": {"keepalive": self.config.timings.keepalive,
                        "deadtime": self.config.timings.deadtime,
                        "warntime": self.config.timings.warn,
                        "initdead": self.config.timings.initial,
                        "deadping": self.config.timings.ping_dead},
            "auto_failback": self.config.auto_failback,
            "nodes": nodes,
            "groups": groups,
            "ping_reach": core["ping_reach"],
            "peer_ping_reach": core["peer_ping_reach"],
            "fencing": core["fencing"],
            "rejected": rejected,
            "counters": {**dict(self.rules.counters), **dict(self.history.counters),
                         "sent": self.counters["sent"], "accepted": self.counters["accepted"],
                         "compressed": self.counters["compressed"],
                         "from_self": self.counters["from_self"]},
        }
