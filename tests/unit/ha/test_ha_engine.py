"""The node engine: heartbeat's protocol duties, rejected packets, reload, status."""

from __future__ import annotations

import dataclasses

from vigil.ha.decision import Announce, ProbeHolders, StartGroup, StopGroup
from vigil.ha.engine import NodeConfig, NodeEngine
from vigil.ha.groups import groups_from_lines
from vigil.ha.state import Hold
from vigil.membership import messages
from vigil.membership.auth import AuthKeys
from vigil.membership.codec import PacketCodec
from vigil.membership.liveness import Timings
from vigil.membership.messages import (
    AskResources,
    Envelope,
    HbTakeover,
    RepNodes,
    ReqNodes,
    Resources,
    Rexmit,
    Shutdone,
    Starting,
    Status,
)

KEYS = AuthKeys.from_pairs(1, {1: ("sha1", "secret")})
GROUPS = groups_from_lines([("n1", ["IPaddr::198.51.100.100"]), ("n2", ["nginx"])])
TIMINGS = Timings(keepalive=0.1, deadtime=0.5, initdead=1.0)


def engine(me: str = "n1", **changes) -> NodeEngine:
    config = NodeConfig(me=me, nodes=("n1", "n2"), links=("eth0",), timings=TIMINGS,
                        keys=KEYS, groups=GROUPS, auto_failback="on")
    config = dataclasses.replace(config, **changes)
    return NodeEngine(config, uuid=me.encode().ljust(16, b"."), generation=7, now=0.0,
                      wall_offset=1.8e9)


def decoded(packets):
    codec = PacketCodec(KEYS)
    return [codec.unpack(p).message for p in packets]


def from_heartbeat(message, seq: int, hg: int = 0x6B09B566):
    """A packet as a heartbeat 3.0.6 node n2 would send it."""
    sequenced = message.sequenced
    env = Envelope(src="n2", hg=hg, ts=0x6B09BB4E, srcuuid=b"\xe4" * 16,
                   seq=seq if sequenced else None,
                   ld="0.1 0.1 0.1 1/100 1" if sequenced else None, ttl=3)
    return PacketCodec(KEYS).pack(message.replace(env=env))


def test_the_first_heartbeat_goes_out_at_once_like_heartbeats_own():
    node = engine()
    packets = decoded(node.start(0.0).packets)
    status = packets[0]
    assert isinstance(status, Status)
    assert status.status == "up" and status.deadtime_ms == 500 and status.protocol == 1
    assert status.env.src == "n1" and status.env.seq == 1 and status.env.hg == 7
    assert status.env.ts == int(1.8e9) and status.env.ttl == 3  # hopfudge + 2 nodes
    assert status.vigil == 1 and status.groups == "RR"
    assert node.next_deadline(0.0) == 0.1


def test_heartbeats_every_keepalive():
    node = engine()
    node.start(0.0)
    sent = [len(node.tick(t / 100).packets) for t in range(1, 35)]
    assert sum(sent) == 3


def test_reqnodes_is_answered_with_the_node_list():
    node = engine()
    node.start(0.0)
    out = node.receive(from_heartbeat(ReqNodes(env=None, dest="n1"), seq=1), "eth0", 0.05)
    replies = [m for m in decoded(out.packets) if isinstance(m, RepNodes)]
    assert replies and replies[0].dest == "n2" and replies[0].nodelist == "n1 n2 "
    assert replies[0].env.destuuid == b"\xe4" * 16


def test_starting_from_a_heartbeat_peer_is_answered_with_our_resources():
    node = engine()
    node.start(0.0)
    node.receive(from_heartbeat(Status(env=None, status="up", deadtime_ms=5000, protocol=1),
                                seq=1), "eth0", 0.0)
    out = node.receive(from_heartbeat(Starting(env=None), seq=2), "eth0", 0.01)
    resources = [m for m in decoded(out.packets) if isinstance(m, Resources)]
    assert resources and resources[-1].rtype == "full"
    assert resources[-1].rsc_hold in ("none", "local")


def test_a_heartbeat_peers_resource_message_says_what_it_runs():
    node = engine()
    node.start(0.0)
    node.receive(from_heartbeat(Status(env=None, status="active", deadtime_ms=5000,
                                       protocol=1), seq=1), "eth0", 0.0)
    out = node.receive(from_heartbeat(Resources(env=None, rsc_hold="local", rtype="full",
                                                isstable="1"), seq=2), "eth0", 0.01)
    assert not node.peer_is_vigil
    assert node.liveness.node("n2").advertised_deadtime == 5.0  # the peer's dt is used
    # n2 says it runs its local group (nginx); ours is free: we start it
    assert [a.group.key for a in out.actions if isinstance(a, StartGroup)] == [
        "IPaddr::198.51.100.100"]


def test_retransmission_requests_are_answered_with_the_original_bytes():
    node = engine()
    first = node.start(0.0).packets
    node.tick(0.1)
    request = from_heartbeat(Rexmit(env=None, dest="n1", firstseq=1, lastseq=1), seq=1)
    envelope = messages.decode(PacketCodec(KEYS).unpack(request).verified.message).env
    assert envelope.seq is None  # NS_ packets carry no sequence number
    out = node.receive(request, "eth0", 0.2)
    assert first[0] in out.packets


def test_forged_corrupt_foreign_and_replayed_packets_are_counted_and_ignored():
    node = engine()
    node.start(0.0)
    alien = PacketCodec(AuthKeys.from_pairs(1, {1: ("sha1", "other cluster")}))
    status = Status(env=Envelope(src="n2", hg=1, ts=1, seq=1), status="active")
    assert node.receive(alien.pack(status), "eth0", 0.0).actions == []
    assert node.receive(b"###\n5:(0)t=x,%%%\n", "eth0", 0.0).actions == []
    stranger = PacketCodec(KEYS).pack(status.with_env(src="n9"))
    node.receive(stranger, "eth0", 0.0)
    good = from_heartbeat(Status(env=None, status="active"), seq=5, hg=9)
    old = from_heartbeat(Status(env=None, status="active"), seq=6, hg=8)
    node.receive(good, "eth0", 0.0)
    node.receive(old, "eth0", 0.01)
    status = node.status(0.02)
    assert status["rejected"]["bad_auth"] == 1
    assert status["rejected"]["malformed"] == 1
    assert status["rejected"]["unknown_node"] == 1
    assert status["rejected"]["replayed"] == 1


def test_a_replay_is_logged_as_a_warning_and_a_packet_for_another_node_quietly():
    def rejected(*packets: bytes):
        node = engine()
        node.start(0.0)
        outs = [node.receive(packet, "eth0", 0.01 * i) for i, packet in enumerate(packets)]
        return [line for line in outs[-1].logs if line.event == "packet.rejected"]

    newer = from_heartbeat(Status(env=None, status="active"), seq=5, hg=9)
    older = from_heartbeat(Status(env=None, status="active"), seq=6, hg=8)
    elsewhere = PacketCodec(KEYS).pack(messages.NakRexmit(env=Envelope(src="n2", hg=9, ts=1),
                                                          firstseq=1, dest="n7"))
    [replayed] = rejected(newer, older)
    [not_ours] = rejected(elsewhere)
    assert (replayed.level, replayed.fields["kind"]) == ("warning", "dropped")
    assert (not_ours.level, not_ours.fields["kind"]) == ("debug", "dropped")


def test_reload_applies_timings_and_keys_but_refuses_new_groups():
    node = engine()
    node.start(0.0)
    newer = dataclasses.replace(node.config, timings=Timings(keepalive=0.05, deadtime=0.3),
                                keys=AuthKeys.from_pairs(2, {2: ("md5", "new")}))
    out = node.reconfigure(newer, 0.01)
    assert any(line.event == "config.reloaded" for line in out.logs)
    assert node.liveness.timings.deadtime == 0.3
    assert decoded_with(out.packets, newer.keys)  # signed with the new key already
    regrouped = dataclasses.replace(newer, groups=GROUPS[:1])
    refused = node.reconfigure(regrouped, 0.02)
    assert [line.event for line in refused.logs] == ["config.refused"]
    assert node.config.groups == GROUPS


def decoded_with(packets, keys):
    return [PacketCodec(keys).unpack(p).message for p in packets]


def test_status_reports_nodes_links_groups_and_counters():
    node = engine()
    node.start(0.0)
    report = node.status(0.5)
    assert report["node"] == "n1" and report["phase"] == "init"
    assert [n["name"] for n in report["nodes"]] == ["n1", "n2"]
    assert report["nodes"][1]["links"][0]["name"] == "eth0"
    assert [g["key"] for g in report["groups"]] == ["IPaddr::198.51.100.100", "nginx"]
    assert set(report["rejected"]) >= {"bad_auth", "malformed", "unknown_node", "replayed"}


# -- heartbeat's standby exchange with a heartbeat 3.0.6 peer -------------------------------------

def heartbeat_packet(message, seq: int, hg: int = 0x6B09B566) -> bytes:
    """A packet as heartbeat node n1 sends it (no vigil fields)."""
    env = Envelope(src="n1", hg=hg, ts=0x6B09BB4E, srcuuid=b"\x78" * 16,
                   seq=seq if message.sequenced else None, ttl=3)
    return PacketCodec(KEYS).pack(message.replace(env=env))


def sent(out, kind):
    return [m for m in decoded(out.packets) if isinstance(m, kind)]


def vigil_n2_with_heartbeat_n1():
    groups = groups_from_lines([("n1", ["IPaddr::198.51.100.100"])])
    node = engine("n2", groups=groups)
    node.start(0.0)
    return node


def vigil_n2_holding_n1s_group_with_heartbeat_n1_stable():
    """n1 (heartbeat) never heard through initdead, so n2 took its group; then n1 came,
    holding nothing, stable."""
    node = vigil_n2_with_heartbeat_n1()
    out = node.tick(1.0)
    node.completed(out.actions[0], True, 1.01)
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 1.1)
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="none", rtype="full",
                                            isstable="1"), 2), "eth0", 1.11)
    return node


def test_failback_to_a_heartbeat_peer_uses_its_standby_exchange():
    node = vigil_n2_with_heartbeat_n1()
    out = node.tick(1.0)  # initdead: n1 never heard, n2 takes its group
    assert [a.group.key for a in out.actions if isinstance(a, StartGroup)] == [
        "IPaddr::198.51.100.100"]
    node.completed(out.actions[0], True, 1.01)
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 1.1)
    out = node.receive(heartbeat_packet(Resources(env=None, rsc_hold="none", rtype="full",
                                                  isstable="1"), 2), "eth0", 1.11)
    # auto_failback on: n2 asks heartbeat to take its group back, and waits
    asks = sent(out, AskResources)
    assert [(a.rsc_hold, a.info) for a in asks] == [("foreign", "me")]
    assert not [a for a in out.actions if isinstance(a, StopGroup)]
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign",
                                                     info="other"), 3), "eth0", 1.12)
    stops = [a for a in out.actions if isinstance(a, StopGroup)]
    assert len(stops) == 1  # permitted: the giver stops first
    out = node.completed(stops[0], True, 1.13)
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("foreign", "done")]
    node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign", info="done"), 4),
                 "eth0", 1.2)
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="local", rtype="full",
                                            isstable="1"), 5), "eth0", 1.21)
    assert node.hb_giving == {}
    assert node.status(1.3)["groups"][0]["holder"] == ["n1"]


def test_a_heartbeat_peers_agreement_ends_with_the_process_that_gave_it():
    """heartbeat 3.0.6 agreed to take its group back, then shut down and restarted (as it
    does after a split): the restarted process, which found the group held here at its
    start, takes nothing unless asked again. A failback must ask it again, not act on the
    old agreement, or the group ends on no node."""
    node = vigil_n2_holding_n1s_group_with_heartbeat_n1_stable()
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign",
                                                     info="other"), 3), "eth0", 1.12)
    [stop] = [a for a in out.actions if isinstance(a, StopGroup)]
    node.completed(stop, True, 1.13)  # and "done" goes out; n1 never answers it:
    out = node.receive(heartbeat_packet(Shutdone(env=None), 4), "eth0", 1.5)
    [start] = [a for a in out.actions if isinstance(a, StartGroup)]  # n1 shut down
    node.completed(start, True, 1.6)
    restarted = 0x6B09B567
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1, hg=restarted), "eth0", 3.0)
    out = node.receive(heartbeat_packet(Resources(env=None, rsc_hold="none", rtype="full",
                                                  isstable="1"), 2, hg=restarted),
                       "eth0", 3.01)
    stops = [a for a in out.actions if isinstance(a, StopGroup)]
    assert not stops, "the group was given on the old process's agreement"
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("foreign", "me")]
    assert node.status(3.1)["groups"][0]["holder"] == ["n2"]


def test_a_heartbeat_peer_going_standby_hands_its_group_to_vigil():
    node = vigil_n2_with_heartbeat_n1()
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 0.1)
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="local", rtype="full",
                                            isstable="1"), 2), "eth0", 0.11)
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="local", info="me"),
                                        3), "eth0", 0.2)
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("local", "other")]
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="none", rtype="full",
                                            isstable="0", info="standby"), 4), "eth0", 0.3)
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="local",
                                                     info="done"), 5), "eth0", 0.4)
    starts = [a for a in out.actions if isinstance(a, StartGroup)]
    assert len(starts) == 1
    out = node.completed(starts[0], True, 0.45)
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("local", "done")]
    assert node.hb_taking == {} and node.hb_peer_give == set()


def test_a_heartbeat_peer_in_flux_has_its_standby_request_ignored_as_heartbeat_does():
    """vigil went standby and heartbeat (n1) took the group back; `hb_standby` on n1 came
    before n1 said it was done (its resource message, stable): heartbeat 3.0.6 ignores its
    own request then ("Standby in progress") and its peer must too ("Other side is in
    flux"), or the peer answers "other" to an exchange n1 never began and waits on it.
    Once n1 says it is stable, the next request is answered."""
    node = vigil_n2_holding_n1s_group_with_heartbeat_n1_stable()
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign",
                                                     info="other"), 3), "eth0", 1.12)
    [stop] = [a for a in out.actions if isinstance(a, StopGroup)]
    node.completed(stop, True, 1.13)  # "done" goes out; n1 acquires the group
    node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign", info="done"), 4),
                 "eth0", 1.2)
    assert node.hb_giving == {}
    # hb_standby on n1 before n1's resource message: ignored, nothing sent
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="local", info="me"),
                                        5), "eth0", 1.21)
    assert sent(out, AskResources) == []
    assert any(line.event == "standby.ignored" for line in out.logs)
    assert node.hb_taking == {}
    # n1 says it is done, stable: the next request is answered
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="local", rtype="full",
                                            isstable="1"), 6), "eth0", 1.3)
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="local", info="me"),
                                        7), "eth0", 1.4)
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("local", "other")]


def test_every_standby_exchange_ends_with_our_resource_message_even_unchanged():
    """heartbeat counts its peer in flux from an exchange until the peer's next resource
    message says it is stable, and sends its own at the end of every exchange. A request
    for resources vigil has no groups of (here n1 hands over "foreign" groups, which are
    none) changes nothing vigil holds; the message must go out all the same, or heartbeat
    refuses every later hb_standby ("Other side is in flux")."""
    node = vigil_n2_with_heartbeat_n1()
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 0.1)
    out = node.receive(heartbeat_packet(Resources(env=None, rsc_hold="all", rtype="full",
                                                  isstable="1"), 2), "eth0", 0.11)
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign",
                                                     info="me"), 3), "eth0", 0.2)
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("foreign", "other")]
    before = node.sent_rsc
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="foreign",
                                                     info="done"), 4), "eth0", 0.3)
    assert [(a.rsc_hold, a.info) for a in sent(out, AskResources)] == [("foreign", "done")]
    resources = sent(out, Resources)
    assert [(r.rsc_hold, r.isstable) for r in resources] == [(before[0], "1")]
    assert node.hb_taking == {}


def test_a_heartbeat_peer_not_yet_heard_stable_has_its_standby_request_ignored():
    node = vigil_n2_with_heartbeat_n1()
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 0.1)
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="local", rtype="full",
                                            isstable="0"), 2), "eth0", 0.11)
    out = node.receive(heartbeat_packet(AskResources(env=None, rsc_hold="local", info="me"),
                                        3), "eth0", 0.2)
    assert sent(out, AskResources) == [] and node.hb_taking == {}


def test_a_heartbeat_peer_restarted_holding_its_group_is_settled_on_its_arp_answer():
    """heartbeat 3.0.6 restarting after a split takes its group at the end of its initdead
    and says so seconds after it is heard again: its ARP answer settles it at once."""
    node = vigil_n2_with_heartbeat_n1()
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 0.1)
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="local", rtype="full",
                                            isstable="1"), 2), "eth0", 0.11)
    out = node.tick(0.7)  # n1 silent for deadtime: n2 takes its group
    [start] = [a for a in out.actions if isinstance(a, StartGroup)]
    node.completed(start, True, 0.71)
    out = node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                               protocol=1), 1, hg=0x6B09B567), "eth0", 2.0)
    assert "peer.restart" in [line.event for line in out.logs]
    [probe] = [a for a in out.actions if isinstance(a, ProbeHolders)]
    assert not [a for a in out.actions if isinstance(a, StopGroup)]  # n1's word awaited
    out = node.holders_answered(probe.group.index, 2.05)
    assert [a for a in out.actions if isinstance(a, StopGroup)] == [
        StopGroup(probe.group, handoff=True)]


def test_vigil_takeover_asks_a_heartbeat_peer_with_hb_takeover():
    node = vigil_n2_with_heartbeat_n1()
    node.receive(heartbeat_packet(Status(env=None, status="active", deadtime_ms=500,
                                         protocol=1), 1), "eth0", 0.1)
    node.receive(heartbeat_packet(Resources(env=None, rsc_hold="local", rtype="full",
                                            isstable="1"), 2), "eth0", 0.11)
    out = node.command("takeover", 0.2, "foreign")
    assert [m.rsc_hold for m in sent(out, HbTakeover)] == ["foreign"]


def test_a_node_name_in_another_case_is_the_same_node_and_never_stops_the_engine():
    node = engine()
    node.start(0.0)
    codec = PacketCodec(KEYS)
    for seq, src in ((1, "N2"), (2, "n2"), (3, "N2")):
        status = Status(env=Envelope(src=src, hg=5, ts=1, seq=seq), status="active")
        node.receive(codec.pack(status), "eth0", seq * 0.05)
    now = 0.2
    while now < 3.0:  # every tick runs (before: KeyError from the second spelling, for good)
        node.tick(now)
        now = max(node.next_deadline(now), now + 0.01)
    [peer] = [n for n in node.status(now)["nodes"] if n["name"] != "n1"]
    assert peer["name"] == "n2"
    assert node.status(now)["counters"]["accepted"] == 3


CRC_KEYS = AuthKeys.from_pairs(1, {1: ("crc", "")})


def test_a_generation_beyond_any_clock_is_refused_where_crc_lets_anyone_forge():
    node = engine(keys=CRC_KEYS)  # its wall clock: 1.8e9 s
    node.start(0.0)
    codec = PacketCodec(CRC_KEYS)
    forged = codec.pack(Status(env=Envelope(src="n2", hg=2**31 - 1, ts=1, seq=1),
                               status="active"))
    node.receive(forged, "eth0", 0.0)
    assert node.status(0.0)["rejected"]["implausible"] == 1
    real = codec.pack(Status(env=Envelope(src="n2", hg=5, ts=1, seq=1), status="active"))
    node.receive(real, "eth0", 0.01)  # not taken for a replay of the forged generation
    assert node.status(0.02)["counters"]["accepted"] == 1


def test_with_hmac_keys_a_peer_ahead_of_this_nodes_clock_is_heard():
    """This node's clock set far back (a dead RTC battery, before NTP): the peer's
    generation (its first start's wall clock) looks years ahead, but only a key holder
    can have sent it: refusing it would make a live peer look dead."""
    node = engine()
    node.wall_offset = 0.0  # the clock reads 1970; the generation file says 7
    node.start(0.0)
    ahead = PacketCodec(KEYS).pack(Status(env=Envelope(src="n2", hg=1_800_000_000, ts=1, seq=1),
                                          status="active"))
    node.receive(ahead, "eth0", 0.0)
    assert node.status(0.0)["rejected"].get("implausible", 0) == 0
    assert node.status(0.0)["counters"]["accepted"] == 1


# -- replays across a restart of the receiving node --------------------------------------------

def from_vigil_n2(message, seq: int, hg: int) -> bytes:
    env = Envelope(src="n2", hg=hg, ts=1, srcuuid=b"n2".ljust(16, b"."),
                   seq=seq if message.sequenced else None)
    return PacketCodec(KEYS).pack(message.replace(env=env))


def active(seq: int, hg: int) -> bytes:
    return from_vigil_n2(Status(env=None, status="active", deadtime_ms=500), seq, hg)


def restarted(marks) -> NodeEngine:
    config = engine().config
    node = NodeEngine(config, uuid=b"n1".ljust(16, b"."), generation=8, now=0.0,
                      wall_offset=1.8e9, known_peers=marks)
    node.start(0.0)
    return node


def started_groups(node: NodeEngine, packet: bytes, now: float) -> list[str]:
    out = node.receive(packet, "eth0", now)
    out.actions += node.tick(now + 0.01).actions
    return [a.group.key for a in out.actions if isinstance(a, StartGroup)]


def test_a_shutdone_captured_before_a_restart_is_a_replay_after_it():
    # n2 stopped once (its shutdone captured), started again, and n1 saw its new generation
    captured = from_vigil_n2(Shutdone(env=None), seq=40, hg=100)
    first = engine()
    first.start(0.0)
    marks: dict[str, tuple[int, int]] = {}
    for seq in range(1, 5):
        marks.update(first.receive(active(seq, hg=101), "eth0", seq * 0.4).marks)
    assert marks == {"n2": (101, 4)}
    # without the marks, a fresh n1 takes the replay for n2 leaving, and starts n2's group
    assert "nginx" in started_groups(restarted({}), captured, 0.1)
    # with them, the replay is refused and nothing starts
    node = restarted(marks)
    assert started_groups(node, captured, 0.1) == []
    assert node.status(0.2)["rejected"]["replayed"] == 1
    # a packet of the current generation captured before the restart is a replay too
    same_generation = from_vigil_n2(Shutdone(env=None), seq=3, hg=101)
    assert started_groups(node, same_generation, 0.2) == []
    # the live peer's next packet is a first contact, not a restart or a partition
    out = node.receive(active(5, hg=101), "eth0", 0.3)
    events = [line.event for line in out.logs]
    assert "peer.contact" in events
    assert "peer.restart" not in events and "peer.returned" not in events
    assert node.status(0.3)["counters"]["accepted"] == 1


def test_marks_follow_every_control_message_and_statuses_once_a_second():
    node = engine()
    node.start(0.0)
    assert node.receive(active(1, hg=101), "eth0", 0.0).marks == {"n2": (101, 1)}  # first
    assert node.receive(active(2, hg=101), "eth0", 0.5).marks == {}
    assert node.receive(active(3, hg=101), "eth0", 1.0).marks == {"n2": (101, 3)}
    ask = from_vigil_n2(AskResources(env=None, rsc_hold="local", info="me"), 4, hg=101)
    assert node.receive(ask, "eth0", 1.1).marks == {"n2": (101, 4)}
    assert node.receive(active(1, hg=102), "eth0", 1.2).marks == {"n2": (102, 1)}  # restart


def run_alone(node: NodeEngine, until: float) -> list[tuple[float, str]]:
    """Drive a node whose peer is never heard on a fake clock, from deadline to deadline.

    Every start succeeds at once; returns (time, group) for each Announce.
    """
    announced = []
    now = 0.0
    pending = list(node.start(now).actions)
    while now <= until:
        while pending:
            action = pending.pop(0)
            if isinstance(action, StartGroup):
                pending += node.completed(action, True, now).actions
            elif isinstance(action, Announce):
                announced.append((now, action.group.key))
        pending += node.tick(now).actions
        if not pending:
            now = node.next_deadline(now)
    return announced


def test_garp_refresh_announces_every_held_group_again_at_its_period():
    node = engine(garp_refresh=2.0)
    announced = run_alone(node, 9.0)
    assert all(node.core.hold[g.index] is Hold.HELD for g in GROUPS)
    held_at = 1.0  # initdead: the peer is never heard, both groups are taken
    times = sorted({t for t, _ in announced})
    assert times == [held_at + 2.0, held_at + 4.0, held_at + 6.0, held_at + 8.0]
    for t in times:
        assert sorted(k for at, k in announced if at == t) == sorted(g.key for g in GROUPS)


def test_no_garp_refresh_by_default_and_none_while_nothing_is_held():
    assert run_alone(engine(), 9.0) == []
    node = engine(garp_refresh=2.0, groups=())
    assert run_alone(node, 9.0) == []
    assert node.core.refresh_at is None


def test_garp_refresh_stops_when_the_groups_are_released_and_a_reload_changes_it():
    node = engine(garp_refresh=2.0)
    run_alone(node, 4.0)
    assert node.core.refresh_at == 5.0
    node.reconfigure(dataclasses.replace(node.config, garp_refresh=0.5), 4.2)
    out = node.tick(4.2)
    assert node.core.refresh_at == 4.7 and not [a for a in out.actions
                                                if isinstance(a, Announce)]
    out = node.tick(4.7)
    assert sorted(a.group.key for a in out.actions if isinstance(a, Announce)) == \
        sorted(g.key for g in GROUPS)
    for line in out.logs:
        if line.event == "ha.decision" and "garp_refresh" in line.fields["reason"]:
            assert line.level == "debug"  # a routine announcement: not one line per period
    stops = node.command("shutdown", 5.0).actions
    assert stops and all(isinstance(a, StopGroup) for a in stops)
    assert node.core.refresh_at is None  # leaving, nothing held: no more rounds
    assert not [a for a in node.tick(6.0).actions if isinstance(a, Announce)]


def test_a_timer_that_runs_late_by_more_than_keepalive_is_a_stall_not_silence():
    node = engine()
    node.start(0.0)
    node.receive(from_heartbeat(Status(env=None, status="active", deadtime_ms=500,
                                       protocol=1), seq=1), "eth0", 0.05)
    assert node.woke(due=0.1, now=0.15).logs == []  # on time: nothing excused
    assert node.woke(due=0.1, now=0.3).logs == []  # jitter under half a deadtime: counted
    out = node.woke(due=0.1, now=2.1)  # stopped for 2 s
    assert [line.event for line in out.logs] == ["heartbeat.stalled"]
    assert node.liveness.node("n2").alive
    assert not [line for line in node.tick(2.1).logs if line.event == "node.dead"]
    dead = node.tick(2.1 + 0.5)
    assert [line for line in dead.logs if "dead" in line.event]
