"""The failover decision core, rule by rule, on two cores joined by a perfect channel."""

from __future__ import annotations

import pytest

from vigil.ha.decision import (
    Announce,
    CancelStart,
    Cause,
    Decision,
    FailoverCore,
    FailoverSettings,
    Fence,
    ProbeHolders,
    SendShutdone,
    StartGroup,
    StopGroup,
    parse_gossip,
)
from vigil.ha.groups import groups_from_lines
from vigil.ha.state import Hold, IllegalTransition, Phase, next_hold, next_phase

GROUPS = groups_from_lines([("n1", ["IPaddr::198.51.100.100/24/eth0", "nginx"]),
                            ("n2", ["IPaddr::198.51.100.101/24/eth0"])])
G1, G2 = GROUPS


class Pair:
    """Two cores; `sync` passes each one's gossip to the other as its heartbeat would."""

    def __init__(self, **settings):
        self.now = 0.0
        self.cores = {
            name: FailoverCore(FailoverSettings(name, peer, GROUPS, keepalive=0.1, **settings),
                               0.0)
            for name, peer in (("n1", "n2"), ("n2", "n1"))}
        self.log: list[tuple[str, Decision]] = []
        self.actions: list[tuple[str, object]] = []
        self.pending: list[tuple[str, object]] = []
        self.connected = {"n1": True, "n2": True}  # running and reachable
        self.fence_result = True
        self.start_ok = {"n1": True, "n2": True}
        self.stop_ok = {"n1": True, "n2": True}

    @property
    def n1(self) -> FailoverCore:
        return self.cores["n1"]

    @property
    def n2(self) -> FailoverCore:
        return self.cores["n2"]

    def other(self, name: str) -> str:
        return "n2" if name == "n1" else "n1"

    def sync(self) -> None:
        for name, core in self.cores.items():
            if not self.connected[name]:
                continue
            peer = self.cores[self.other(name)]
            if not self.connected[self.other(name)]:
                continue
            gossip = peer.gossip()
            states, give, want = parse_gossip(len(GROUPS), gossip["groups"], gossip["give"],
                                              gossip["want"])
            if not core.peer.alive:
                core.peer_alive(self.now)
            core.peer_info(self.now, states=states, give=give, want=want,
                           phase=gossip["phase"], ping=gossip["ping"])

    def record(self, name: str, decisions: list[Decision]) -> None:
        for decision in decisions:
            self.log.append((name, decision))
            for action in decision.actions:
                self.actions.append((name, action))
                self.pending.append((name, action))

    def comm_up(self) -> None:
        self.sync()
        for name, core in self.cores.items():
            self.record(name, core.comm_up(self.now))

    def step(self, complete: bool = True) -> None:
        self.sync()
        for name, core in self.cores.items():
            if core.phase is not Phase.DONE and self.connected.get(name, True) is not None:
                self.record(name, core.decide(self.now))
        if complete:
            self.complete()

    def complete(self) -> None:
        pending, self.pending = self.pending, []
        for name, action in pending:
            core = self.cores[name]
            if isinstance(action, StartGroup):
                ok = self.start_ok[name]
            elif isinstance(action, StopGroup):
                ok = self.stop_ok[name]
            elif isinstance(action, Fence):
                ok = self.fence_result
            else:
                continue
            self.record(name, core.action_done(action, ok, self.now))

    def settle(self, steps: int = 8) -> None:
        for _ in range(steps):
            self.now += 0.1
            self.step()

    def holds(self) -> dict[str, str]:
        return {name: "".join(h.value for h in core.hold) for name, core in self.cores.items()}

    def reasons(self, name: str | None = None) -> list[str]:
        return [d.reason for who, d in self.log if name in (None, who)]

    def kill(self, name: str) -> None:
        """A crash: the survivor sees the peer dead after deadtime."""
        self.connected[name] = False
        survivor = self.cores[self.other(name)]
        self.record(self.other(name), survivor.peer_dead(self.now))


def core_with_ready_peer(**settings) -> FailoverCore:
    """n1's core, hearing n2 alive, ready and holding its own group (G2)."""
    core = FailoverCore(FailoverSettings("n1", "n2", GROUPS, **settings), 0.0)
    core.peer_alive(0)
    core.peer_info(0, states=[Hold.RELEASED, Hold.HELD], phase="ready")
    core.comm_up(0)
    return core


def complete_every_action(core: FailoverCore, now: float) -> None:
    """Decide now and report every action as done."""
    for decision in core.decide(now):
        for action in decision.actions:
            core.action_done(action, True, now)


def started_pair(**settings) -> Pair:
    pair = Pair(**settings)
    pair.comm_up()
    pair.settle()
    return pair


# -- start-up ---------------------------------------------------------------------------------

def test_simultaneous_start_each_node_takes_its_home_group():
    pair = started_pair(auto_failback="on")
    assert pair.holds() == {"n1": "HR", "n2": "RH"}
    assert "starting group IPaddr::198.51.100.100/24/eth0 (home node)" in pair.reasons("n1")


def test_nothing_starts_before_communication_is_up():
    pair = Pair()
    pair.settle()
    assert pair.actions == [] and pair.holds() == {"n1": "RR", "n2": "RR"}


def test_peer_never_heard_within_initdead_means_taking_everything():
    core = FailoverCore(FailoverSettings("n1", "n2", GROUPS), 0.0)
    core.comm_up(12.0)  # initdead expired without a word from n2
    decisions = core.decide(12.0)
    started = [a.group for d in decisions for a in d.actions if isinstance(a, StartGroup)]
    assert started == [G1, G2]
    assert any("not heard within initdead" in d.reason for d in decisions)


def test_a_node_joining_a_running_peer_that_holds_everything_waits():
    pair = Pair(auto_failback="off")
    pair.connected["n1"] = False
    pair.n2.comm_up(0)
    pair.n2.decide(0)  # n2 alone takes both (n1 never heard)
    for action in (StartGroup(G1), StartGroup(G2)):
        pair.n2.action_done(action, True, 0)
    pair.connected["n1"] = True
    pair.comm_up()
    pair.settle()
    assert pair.holds() == {"n1": "RR", "n2": "HH"}  # auto_failback off: nothing moves


def test_a_peer_that_says_nothing_about_its_groups_gets_the_negotiation_timeout():
    core = FailoverCore(FailoverSettings("n1", "n2", GROUPS, negotiation_timeout=10), 0.0)
    core.peer_alive(0.0)
    core.comm_up(0.0)
    assert core.decide(5.0) == []
    assert core.next_deadline(5.0) == 10.0
    decisions = core.decide(10.0)
    assert [a for d in decisions for a in d.actions] == [StartGroup(G1)]  # home group only


# -- failure of the peer ----------------------------------------------------------------------

def test_dead_peer_groups_are_taken_over_with_the_reason():
    pair = started_pair()
    pair.kill("n2")
    pair.settle()
    assert pair.holds()["n1"] == "HH"
    assert "peer n2 dead: taking over group IPaddr::198.51.100.101/24/eth0" in pair.reasons()


@pytest.mark.parametrize("mode", ["on", "legacy"])
def test_auto_failback_on_sends_the_group_home_giver_first(mode):
    pair = started_pair(auto_failback=mode)
    pair.kill("n2")
    pair.settle()
    pair.connected["n2"] = True
    pair.n2.hold = [Hold.RELEASED, Hold.RELEASED]  # it restarted
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "RH"}
    moves = [(who, type(a).__name__) for who, a in pair.actions if getattr(a, "group", None) == G2]
    assert moves[-2:] == [("n1", "StopGroup"), ("n2", "StartGroup")]
    assert any("auto_failback" in r for r in pair.reasons("n1"))


def test_failback_waits_until_the_home_node_could_start_the_group():
    """The home node's replicated disk still syncs: it says the group cannot start there
    yet (U), the survivor keeps it; once in sync (R) the group goes home."""
    pair = started_pair(auto_failback="on")
    pair.kill("n2")
    pair.settle()
    pair.connected["n2"] = True
    pair.n2.hold = [Hold.RELEASED, Hold.RELEASED]  # it restarted
    decisions = pair.n2.readiness(1, "r0: disk Inconsistent (the resync has not finished)")
    assert "cannot start here yet: r0: disk Inconsistent" in decisions[0].reason
    pair.settle(20)
    assert pair.holds() == {"n1": "HH", "n2": "RU"}
    assert not [a for who, a in pair.actions[-20:] if who == "n1" and isinstance(a, StopGroup)]
    assert pair.n2.readiness(1, "still syncing") == []  # said once
    assert "can start here again" in pair.n2.readiness(1, None)[0].reason
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "RH"}
    assert any("auto_failback" in r for r in pair.reasons("n1"))


def test_readiness_changes_only_a_released_group():
    pair = started_pair()
    assert pair.holds()["n2"] == "RH"
    assert pair.n2.readiness(1, "syncing") == []  # it runs there: nothing to say
    assert pair.n2.readiness(0, None) == []
    pair.n2.readiness(0, "syncing")
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "UH"}  # n1 keeps its own group


def test_nobody_running_a_group_it_goes_where_it_can_start():
    pair = Pair()
    pair.n1.readiness(0, "r0: disk Outdated")
    pair.comm_up()
    pair.settle()
    assert pair.holds() == {"n1": "UR", "n2": "HH"}
    assert any("not startable here yet" in r for r in pair.reasons("n2"))


def test_auto_failback_off_leaves_the_group_where_it_is():
    pair = started_pair(auto_failback="off")
    pair.kill("n2")
    pair.settle()
    pair.connected["n2"] = True
    pair.n2.hold = [Hold.RELEASED, Hold.RELEASED]
    pair.settle()
    assert pair.holds() == {"n1": "HH", "n2": "RR"}


# -- standby and takeover ---------------------------------------------------------------------

@pytest.mark.parametrize(("which", "n1", "n2"), [("local", "RR", "HH"), ("all", "RR", "HH")])
def test_standby_hands_groups_to_the_peer(which, n1, n2):
    pair = started_pair(auto_failback="on")
    decision = pair.n1.standby(which, pair.now)
    assert "handing" in decision.reason
    pair.settle()
    assert pair.holds() == {"n1": n1, "n2": n2}
    pair.settle(30)
    assert pair.holds() == {"n1": n1, "n2": n2}  # standby sticks, even with auto_failback on


def test_standby_foreign_gives_back_only_the_peers_groups():
    pair = started_pair()
    pair.kill("n2")
    pair.settle()
    pair.connected["n2"] = True
    pair.n2.hold = [Hold.RELEASED, Hold.RELEASED]
    pair.cores["n1"].settings = pair.n1.settings.__class__(
        **{**pair.n1.settings.__dict__, "auto_failback": "off"})
    pair.settle()
    assert pair.holds()["n1"] == "HH"
    pair.n1.standby("foreign", pair.now)
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "RH"}


def test_standby_without_a_live_peer_is_refused():
    pair = started_pair()
    pair.kill("n2")
    decision = pair.n1.standby("all", pair.now)
    assert "refused" in decision.reason and decision.level == "warning"


def a_takeover_refused_while_n1_stalls() -> Pair:
    """n1 holds G1 and stalls past deadtime; n2 judges it dead, and its takeover of G1
    fails (the duplicate-address guard: n1's address still answers); n1 resumes, still
    holding G1, and reaches n2 again."""
    pair = started_pair()
    assert pair.holds() == {"n1": "HR", "n2": "RH"}
    pair.start_ok["n2"] = False
    pair.kill("n1")
    pair.settle()
    assert pair.holds()["n2"] == "FH"
    pair.start_ok["n2"] = True
    pair.connected["n1"] = True
    return pair


def standby_after_a_refused_takeover(peer_event: str) -> Pair:
    """n2 hears n1 again after a partition (`returned`, same generation) or as a new
    process (`restarted`)."""
    pair = a_takeover_refused_while_n1_stalls()
    pair.sync()
    pair.record("n2", getattr(pair.n2, f"peer_{peer_event}")(pair.now))
    pair.settle()
    return pair


def test_a_takeover_refused_while_the_peer_ran_it_is_not_held_against_the_node():
    """Once the peer is back from a partition, the failed start is void: a standby on
    the peer hands the group over (before, it answered "handing" and nothing moved)."""
    pair = standby_after_a_refused_takeover("returned")
    assert pair.holds() == {"n1": "HR", "n2": "RH"}
    assert any("not held against this node" in r for r in pair.reasons("n2"))
    decision = pair.n1.standby("all", pair.now)
    assert "handing" in decision.reason and decision.level == "info"
    pair.settle()
    assert pair.holds() == {"n1": "RR", "n2": "HH"}


def test_a_takeover_refused_before_the_peer_restarted_stays_failed():
    """A peer that restarted (a new generation) did not run the group all along: the
    failed start keeps its failed_retry, and a standby says it cannot hand it over."""
    pair = standby_after_a_refused_takeover("restarted")
    assert pair.holds() == {"n1": "HR", "n2": "FH"}
    decision = pair.n1.standby("all", pair.now)
    assert decision.level == "warning"
    assert decision.reason.startswith("standby all refused: IPaddr::198.51.100.100/24/eth0 "
                                      "failed on n2 and stays here")
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "FH"}


def test_standby_hands_over_what_it_can_and_names_what_failed_on_the_peer():
    pair = Pair()
    pair.comm_up()
    pair.kill("n2")
    pair.settle()
    assert pair.holds()["n1"] == "HH"  # n1 runs n2's group too
    pair.connected["n2"] = True
    pair.n2.hold = [Hold.FAILED, Hold.RELEASED]  # n2 back; G1 once failed there
    pair.n2.failed_at[G1.index] = pair.now
    pair.sync()
    decision = pair.n1.standby("all", pair.now)
    assert decision.level == "warning"
    assert decision.reason == ("standby all: handing IPaddr::198.51.100.101/24/eth0 to n2; "
                               "IPaddr::198.51.100.100/24/eth0 failed on n2 and stays here "
                               "(`vigil cleanup` on n2 once its cause is fixed)")
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "FH"}


def test_takeover_asks_the_peer_to_release():
    pair = started_pair(auto_failback="on")
    pair.n1.takeover("all", pair.now)
    pair.settle()
    assert pair.holds() == {"n1": "HH", "n2": "RR"}
    order = [(who, type(a).__name__) for who, a in pair.actions if getattr(a, "group", None) == G2]
    assert order[-2:] == [("n2", "StopGroup"), ("n1", "StartGroup")]
    pair.settle(30)
    assert pair.holds() == {"n1": "HH", "n2": "RR"}


def test_a_hand_over_the_peer_ignores_is_cancelled():
    core = core_with_ready_peer(handover_timeout=10)
    complete_every_action(core, 0)
    core.standby("local", 1)
    for decision in core.decide(1):
        for action in decision.actions:
            core.action_done(action, True, 1)
    assert core.hold[0] is Hold.RELEASED
    assert core.decide(5) == []
    decisions = core.decide(11)
    assert any("cancelled" in d.reason for d in decisions)
    assert [a for d in decisions for a in d.actions] == [StartGroup(G1)]  # home again


# -- graceful shutdown ------------------------------------------------------------------------

def test_graceful_shutdown_releases_everything_then_says_shutdone():
    pair = started_pair()
    pair.record("n1", pair.n1.shutdown(pair.now))
    pair.settle()
    assert pair.holds() == {"n1": "RR", "n2": "HH"}
    kinds = [type(a).__name__ for who, a in pair.actions if who == "n1"]
    assert kinds[-2:] == ["StopGroup", "SendShutdone"]
    assert pair.n1.phase is Phase.DONE


def test_a_peer_that_said_shutdone_is_taken_over_without_fencing():
    core = core_with_ready_peer(fencing=True)
    core.peer_gone(1)
    core.peer_dead(1)
    actions = [a for d in core.decide(1) for a in d.actions]
    assert StartGroup(G2) in actions and not any(isinstance(a, Fence) for a in actions)


# -- ipfail -----------------------------------------------------------------------------------

def test_the_node_reaching_fewer_ping_nodes_gives_its_groups_away():
    pair = started_pair(ping_configured=True)
    pair.n1.set_ping(1, pair.now)
    pair.n2.set_ping(1, pair.now)
    pair.settle()
    pair.n1.set_ping(0, pair.now)  # n1 lost the gateway
    pair.settle()
    assert pair.holds() == {"n1": "RR", "n2": "HH"}
    assert any("ping" in r for r in pair.reasons("n1"))


def test_both_losing_the_ping_nodes_moves_nothing():
    pair = started_pair(ping_configured=True)
    for core in pair.cores.values():
        core.set_ping(1, pair.now)
    pair.settle()
    pair.n1.set_ping(0, pair.now)
    pair.n2.set_ping(0, pair.now)
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "RH"}


def test_a_short_difference_in_reach_moves_nothing():
    pair = started_pair(ping_configured=True, ipfail_hold=1.0)
    for core in pair.cores.values():
        core.set_ping(1, pair.now)
    pair.settle()
    pair.n1.set_ping(0, pair.now)
    pair.settle(3)
    pair.n2.set_ping(0, pair.now)  # the gateway died: n2 noticed 0.3 s later
    pair.settle(30)
    assert pair.holds() == {"n1": "HR", "n2": "RH"}


# -- split brain ------------------------------------------------------------------------------

def split_brain(**settings) -> Pair:
    pair = started_pair(**settings)
    for name in ("n1", "n2"):
        pair.record(name, pair.cores[name].peer_dead(pair.now))
    pair.connected = {"n1": False, "n2": False}
    for name, core in pair.cores.items():
        pair.record(name, core.decide(pair.now))
    pair.complete()
    assert pair.holds() == {"n1": "HH", "n2": "HH"}
    pair.connected = {"n1": True, "n2": True}
    return pair


def test_split_brain_settles_at_the_first_heartbeat_home_node_keeps():
    pair = split_brain()
    pair.log.clear()
    pair.actions.clear()
    pair.step()  # one heartbeat crossed each way
    assert pair.holds() == {"n1": "HR", "n2": "RH"}
    stops = [(who, a.group) for who, a in pair.actions if isinstance(a, StopGroup)]
    assert sorted(stops, key=lambda s: s[0]) == [("n1", G2), ("n2", G1)]
    announces = [(who, a.group) for who, a in pair.actions if isinstance(a, Announce)]
    assert ("n1", G1) in announces and ("n2", G2) in announces
    assert any("keeping it here (home node n1)" in r for r in pair.reasons("n1"))
    pair.settle()
    # once the other side stopped, the keeper announces again (stale ARP caches heal)
    assert sum(1 for who, a in pair.actions if isinstance(a, Announce) and who == "n1") == 2


def test_split_brain_keeper_is_the_node_with_better_ping_reach():
    pair = split_brain(ping_configured=True)
    pair.n1.set_ping(0, pair.now)
    pair.n2.set_ping(1, pair.now)
    pair.step()
    pair.settle()
    assert pair.holds() == {"n1": "RR", "n2": "HH"}


def test_the_keeper_never_stops_its_group_during_the_settlement():
    pair = split_brain()
    pair.step()
    pair.settle()
    kept = [a for who, a in pair.actions if who == "n1" and isinstance(a, StopGroup)
            and a.group == G1]
    assert kept == []


# -- fencing ----------------------------------------------------------------------------------

def test_a_peer_that_may_run_groups_is_fenced_before_takeover():
    pair = started_pair(fencing=True)
    pair.kill("n2")
    pair.step(complete=False)
    assert [a for who, a in pair.pending] == [Fence("n2")]
    pair.complete()
    pair.settle()
    assert pair.holds()["n1"] == "HH"
    assert any("fenced: taking over is safe" in r for r in pair.reasons())


def test_a_failed_fence_means_no_takeover_and_a_retry():
    pair = started_pair(fencing=True, fence_retry=5.0)
    pair.fence_result = False
    pair.kill("n2")
    pair.settle(20)
    assert pair.holds()["n1"] == "HR"
    critical = [d for who, d in pair.log if d.level == "critical"]
    assert critical and "FENCING OF n2 FAILED: no takeover" in critical[0].reason
    fences = [a for who, a in pair.actions if isinstance(a, Fence)]
    assert len(fences) == 1
    pair.fence_result = True
    pair.settle(40)  # the retry, 5 s later
    assert pair.holds()["n1"] == "HH"


def test_fence_policy_ignore_takes_over_loudly():
    pair = started_pair(fencing=True, fence_policy="ignore")
    pair.fence_result = False
    pair.kill("n2")
    pair.settle()
    assert pair.holds()["n1"] == "HH"
    assert any("taking over anyway" in d.reason for who, d in pair.log)


# -- failures of groups -----------------------------------------------------------------------

def test_a_failed_start_is_cleaned_up_and_the_peer_takes_the_group():
    pair = Pair()
    pair.start_ok["n1"] = False
    pair.comm_up()
    pair.settle()
    assert pair.holds() == {"n1": "FR", "n2": "HH"}
    cleanups = [a for who, a in pair.actions if isinstance(a, StopGroup) and a.cleanup]
    assert cleanups == [StopGroup(G1, cleanup=True)]


def test_a_start_failed_before_the_peer_died_is_retried_at_once():
    """A takeover refused while the peer only looked dead (its address still answered)
    must not delay the takeover when it then dies for real (found by vigil torture)."""
    pair = a_takeover_refused_while_n1_stalls()
    pair.settle()
    pair.now += 5.0  # well within failed_retry (30 s)
    pair.kill("n1")  # now it dies for real
    pair.settle()
    assert pair.holds()["n2"] == "HH"


def test_a_start_failed_before_the_peer_shut_down_is_retried_at_once():
    """As above, but the peer then shuts down (heartbeat 3.0.6 does, after a split) rather
    than dies: its shutdone says it released everything, so the refused takeover is retried
    at once, not after failed_retry (found by vigil torture: the VIP on no node for 19 s)."""
    pair = a_takeover_refused_while_n1_stalls()
    pair.settle()
    pair.now += 2.0  # well within failed_retry (30 s)
    pair.record("n1", pair.n1.shutdown(pair.now))
    pair.settle()
    assert pair.n1.phase is Phase.DONE and pair.holds()["n1"] == "RR"
    pair.connected["n1"] = False
    pair.record("n2", pair.n2.peer_gone(pair.now))
    pair.settle()
    assert pair.holds()["n2"] == "HH"


def stuck_pair() -> Pair:
    """n1's stop of its group fails on a standby: the group stays stuck there."""
    pair = started_pair()
    pair.stop_ok["n1"] = False
    pair.n1.standby("local", pair.now)
    pair.settle(20)
    assert pair.holds() == {"n1": "XR", "n2": "RH"}
    return pair


def test_a_failed_stop_leaves_the_group_stuck_and_the_peer_does_not_take_it():
    pair = stuck_pair()
    assert any(d.level == "critical" and "failed to stop" in d.reason for who, d in pair.log)
    stops = [a for who, a in pair.actions if who == "n1" and isinstance(a, StopGroup)]
    assert len(stops) == 1  # never retried in a loop


def test_illegal_transitions_raise():
    with pytest.raises(IllegalTransition):
        next_hold(Hold.RELEASED, "stopped")
    with pytest.raises(IllegalTransition):
        next_hold(Hold.HELD, "start")
    with pytest.raises(IllegalTransition):
        next_phase(Phase.DONE, "comm_up")
    core = FailoverCore(FailoverSettings("n1", "n2", GROUPS), 0.0)
    with pytest.raises(IllegalTransition):
        core.action_done(StartGroup(G1), True, 0.0)


def test_a_group_found_running_at_start_is_claimed_and_settled():
    pair = Pair()
    pair.n2.adopt(0)  # n2 crashed earlier with n1's group up
    pair.comm_up()
    pair.settle()
    assert pair.holds() == {"n1": "HR", "n2": "RH"}  # failback: it goes home, giver first


def test_gossip_round_trips_and_rejects_a_different_group_list():
    core = FailoverCore(FailoverSettings("n1", "n2", GROUPS), 0.0)
    core.adopt(1)
    gossip = core.gossip()
    assert gossip["groups"] == "RH"
    states, give, want = parse_gossip(2, gossip["groups"], "10", "01")
    assert states == [Hold.RELEASED, Hold.HELD] and give == {0} and want == {1}
    assert parse_gossip(3, "RH", None, None)[0] is None


def test_single_node_cluster_runs_everything():
    core = FailoverCore(FailoverSettings("n1", None, GROUPS), 0.0)
    core.comm_up(0.0)
    actions = [a for d in core.decide(0.0) for a in d.actions]
    assert actions == [StartGroup(G1), StartGroup(G2)]
    assert core.heartbeat_rsc_hold() == "all"


def test_shutdone_is_sent_once():
    core = FailoverCore(FailoverSettings("n1", None, GROUPS), 0.0)
    core.comm_up(0.0)
    core.shutdown(0.0)
    first = [a for d in core.decide(0.0) for a in d.actions]
    assert first == [SendShutdone()]
    assert core.decide(0.1) == []


def test_takeover_delay_waits_after_the_peer_died():
    core = core_with_ready_peer(takeover_delay=0.5)
    complete_every_action(core, 0)
    core.peer_dead(1.0)
    assert core.decide(1.2) == []
    assert core.next_deadline(1.2) == 1.5
    assert [a for d in core.decide(1.5) for a in d.actions] == [StartGroup(G2)]


def test_a_group_that_fails_here_is_stopped_and_the_peer_takes_it():
    pair = started_pair()
    decisions = pair.n1.group_failed(0, "mysqld would not restart", pair.now)
    pair.record("n1", decisions)
    assert decisions[0].actions == (StopGroup(G1),) and decisions[0].level == "error"
    pair.complete()
    pair.settle()
    assert pair.holds() == {"n1": "FR", "n2": "HH"}
    pair.settle(30)
    assert pair.holds() == {"n1": "FR", "n2": "HH"}  # no ping-pong back to the failed node
    assert pair.n1.group_failed(0, "again", pair.now) == []  # not running here: nothing to do


# -- the keeper corrects the clients' caches -------------------------------------------------

def test_the_keeper_announces_again_whenever_the_peer_lets_go_or_returns():
    core = core_with_ready_peer()
    complete_every_action(core, 0.5)  # n1 starts its home group G1
    assert core.hold[G1.index] is Hold.HELD
    for event in (core.peer_returned, core.peer_gone, core.peer_restarted):
        actions = [a for d in event(1) for a in d.actions]
        assert actions == [Announce(G1)], event.__name__


def test_nothing_is_announced_when_nothing_is_held_here():
    core = core_with_ready_peer()
    assert [a for d in core.peer_gone(1) for a in d.actions] == []


def test_on_return_only_the_groups_this_node_keeps_are_announced_at_once():
    """n1 holds both groups after a partition; G2 is n2's: pulling the clients to n1's MAC
    for an address n1 is about to give away would strand them once n1 stops it."""
    pair = split_brain()
    actions = [a for d in pair.n1.peer_returned(pair.now) for a in d.actions]
    assert [a for a in actions if isinstance(a, Announce)] == [Announce(G1)]
    assert [a for a in actions if isinstance(a, ProbeHolders)] == [ProbeHolders(G2)]
    assert pair.n1.returned == {G2.index}


def test_a_group_the_peer_keeps_is_stopped_with_a_hand_off():
    pair = split_brain()
    pair.record("n1", pair.n1.peer_returned(pair.now))
    pair.actions.clear()
    pair.step()
    stops = [a for who, a in pair.actions if who == "n1" and isinstance(a, StopGroup)]
    assert stops == [StopGroup(G2, handoff=True)]  # the peer keeps G2: tell the segment
    assert pair.n1.returned == set()


def test_every_group_given_to_the_peer_is_handed_off():
    """heartbeat 3.0.6 agrees to take back a group it kept through a split and starts
    nothing: whatever the reason of the stop, the segment must learn who holds it now."""
    for why in ("standby", Cause.AUTO_FAILBACK, Cause.PEER_ASKED):
        alone = core_with_ready_peer()
        complete_every_action(alone, 0.5)  # n1 holds G1, the peer runs nothing
        assert alone._give(G1, why).actions == (StopGroup(G1, handoff=True),), why


def holding_both_when_the_peer_restarts() -> FailoverCore:
    """n1 took n2's group (G2) when n2 died; n2 comes back as a new generation whose
    state is not known yet (heartbeat 3.0.6 restarting after a split says it seconds
    later)."""
    core = core_with_ready_peer()
    complete_every_action(core, 0.5)
    core.peer_dead(1.0)
    complete_every_action(core, 1.0)
    assert core.hold == [Hold.HELD, Hold.HELD]
    return core


def test_a_restarted_peer_is_asked_about_the_groups_it_would_keep_only():
    core = holding_both_when_the_peer_restarts()
    actions = [a for d in core.peer_restarted(2.0) for a in d.actions]
    assert [a for a in actions if isinstance(a, ProbeHolders)] == [ProbeHolders(G2)]


def test_a_restarted_peer_answering_for_a_group_it_keeps_settles_the_split_at_once():
    """Found by `vigil torture --setup mixed --seed 102` (fault 87): heartbeat 3.0.6
    restarted during a partition, took the VIP at the end of its initdead, and said so
    9 s after the heal; the VIP was on both nodes all that time."""
    core = holding_both_when_the_peer_restarts()
    core.peer_restarted(2.0)
    assert core.desired(G2.index, 2.0) == (None, Cause.WAITING_FOR_PEER)
    assert core.peer_answers(G2.index, 2.1)  # its ARP answer for G2's address
    [decision] = core.decide(2.1)
    assert decision.actions == (StopGroup(G2, handoff=True),)
    assert "split brain" in decision.reason and decision.level == "warning"
    assert core.hold[G1.index] is Hold.HELD  # n1's own group stays


def test_without_an_answer_the_restarted_peer_is_waited_for():
    core = holding_both_when_the_peer_restarts()
    core.peer_restarted(2.0)
    assert core.decide(2.1) == []
    assert core.hold == [Hold.HELD, Hold.HELD]


def test_once_the_peer_has_said_what_it_runs_an_address_answer_changes_nothing():
    core = holding_both_when_the_peer_restarts()
    core.peer_restarted(2.0)
    core.peer_info(2.05, states=[Hold.RELEASED, Hold.RELEASED], phase="ready")
    assert core.peer_answers(G2.index, 2.1) == []
    assert core.answered == set()
    assert not any(isinstance(a, StopGroup) and "split" in d.reason
                   for d in core.decide(2.1) for a in d.actions)


def test_an_answer_heard_before_the_peer_spoke_is_forgotten_once_it_does():
    core = holding_both_when_the_peer_restarts()
    core.peer_restarted(2.0)
    core.peer_answers(G2.index, 2.1)
    core.peer_info(2.1, states=[Hold.RELEASED, Hold.RELEASED], phase="ready")
    assert core.answered == set()


def starting_the_peers_group_when_it_returns() -> FailoverCore:
    """n1 is still starting n2's group (G2), taken when n2 died, when n2 is heard again
    still running it (a partition, not a death)."""
    core = core_with_ready_peer()
    complete_every_action(core, 0.5)
    core.peer_dead(1.0)
    assert [a for d in core.decide(1.0) for a in d.actions] == [StartGroup(G2)]
    core.peer_alive(1.5)
    core.peer_returned(1.5)
    core.peer_info(1.5, states=[Hold.RELEASED, Hold.HELD], phase="ready")
    return core


def test_a_start_the_split_brain_rule_gives_to_the_peer_is_abandoned():
    """Found by `vigil torture --setup replicated --seed 101` (fault 96): server6's start
    after a 3.3 s partition retried a volume that refused a second primary for 10 s,
    and the VIP it had added first stayed on both nodes 9.9 s after the heal."""
    core = starting_the_peers_group_when_it_returns()
    [decision] = core.decide(1.5)
    assert decision.actions == (CancelStart(G2),)
    assert "abandoning its start" in decision.reason and decision.level == "warning"
    assert core.decide(1.6) == []  # asked once
    [stop] = core.action_done(StartGroup(G2), False, 1.7)
    assert stop.actions == (StopGroup(G2, cleanup=True, handoff=True),)
    assert core.hold[G2.index] is Hold.CLEANING
    core.action_done(StopGroup(G2, cleanup=True, handoff=True), True, 1.8)
    # let go, not failed: nothing waits for failed_retry, nothing needs clearing
    assert core.hold[G2.index] is Hold.RELEASED and G2.index not in core.failed_at
    assert core.decide(1.9) == []
    assert core.hold[G1.index] is Hold.HELD


def test_an_abandoned_start_that_finished_first_is_stopped_as_a_split_brain():
    core = starting_the_peers_group_when_it_returns()
    core.decide(1.5)
    core.action_done(StartGroup(G2), True, 1.6)  # it ended before the cancel reached it
    assert core.hold[G2.index] is Hold.HELD and core.cancelling == set()
    [give] = core.decide(1.7)
    assert give.actions == (StopGroup(G2, handoff=True),) and "split brain" in give.reason
    core.action_done(StopGroup(G2, handoff=True), True, 1.8)
    assert core.hold[G2.index] is Hold.RELEASED


def test_a_start_of_a_group_this_node_keeps_goes_on():
    core = core_with_ready_peer()
    core.peer_info(0, states=[Hold.RELEASED, Hold.RELEASED], phase="ready")
    assert [a for d in core.decide(0.5) for a in d.actions] == [StartGroup(G1)]
    core.peer_info(0.6, states=[Hold.HELD, Hold.RELEASED], phase="ready")  # the peer too
    assert not [a for d in core.decide(0.7) for a in d.actions if isinstance(a, CancelStart)]


def test_a_returned_group_the_peer_does_not_run_is_announced_once_the_peer_says_so():
    pair = split_brain(auto_failback="off")  # n1 may keep n2's group
    # n2 let G2 go while the links were cut (as a heartbeat peer restarting may)
    pair.n2.hold[G2.index] = Hold.RELEASED
    pair.n2._changed()
    pair.record("n1", pair.n1.peer_returned(pair.now))
    assert pair.n1.returned == {G2.index}
    pair.actions.clear()
    pair.step()
    assert ("n1", Announce(G2)) in pair.actions
    assert pair.n1.returned == set()
    assert any("does not run" in r for r in pair.reasons("n1"))


def test_garp_refresh_is_a_core_deadline_while_groups_are_held():
    core = core_with_ready_peer(garp_refresh=10.0)
    assert core.refresh_at is None  # nothing held yet
    complete_every_action(core, 0.5)  # G1 held from 0.5
    assert core.decide(0.5) == [] and core.refresh_at == 10.5
    assert core.next_deadline(1.0) == 10.5
    assert core.decide(10.4) == []
    [decision] = core.decide(10.5)
    assert decision.actions == (Announce(G1),) and decision.level == "debug"
    assert core.refresh_at == 20.5


def test_a_peer_leaving_with_a_stuck_group_does_not_have_it_started_here():
    """Found by `vigil torture --setup heartbeat --kinds stop-fails`: n1's stop failed and
    its group is stuck there (it may still run); n1's daemon is then restarted (SIGTERM):
    it leaves with the group still running. n2 must not start it, neither while n1 is
    leaving nor after its shutdone (only the duplicate-address probe refused it)."""
    pair = started_pair()
    pair.stop_ok["n1"] = False
    pair.n1.standby("local", pair.now)
    pair.settle(20)
    assert pair.holds() == {"n1": "XR", "n2": "RH"}
    pair.record("n1", pair.n1.shutdown(pair.now))
    pair.settle()
    assert pair.n1.phase is Phase.DONE and pair.holds()["n2"] == "RH"
    assert any("still stuck" in r for r in pair.reasons("n1"))
    pair.connected["n1"] = False
    pair.record("n2", pair.n2.peer_gone(pair.now))
    pair.settle()
    assert pair.holds()["n2"] == "RH"
    assert not any(isinstance(a, StartGroup) and a.group == G1
                   for who, a in pair.actions if who == "n2")


def test_an_operator_cleanup_retries_a_stuck_groups_stop_and_the_peer_takes_it():
    pair = stuck_pair()
    assert "needs no clearing" in pair.n2.clear(1).reason  # held and running: left alone
    pair.record("n1", [pair.n1.clear(0)])  # still failing: stuck again, nothing moves
    pair.settle(20)
    assert pair.holds() == {"n1": "XR", "n2": "RH"}
    pair.stop_ok["n1"] = True  # the operator fixed what would not stop
    retried = pair.n1.clear(0)
    assert "stop tried again" in retried.reason
    pair.record("n1", [retried])
    pair.settle(20)
    assert pair.holds() == {"n1": "RR", "n2": "HH"}
    stops = [a for who, a in pair.actions if who == "n1" and isinstance(a, StopGroup)]
    assert len(stops) == 3  # the standby's, and one per cleanup
