"""Two-node clusters on the lossy in-memory network: scenarios and random fault schedules."""

from __future__ import annotations

import os
import random

import pytest

from vigil.ha.groups import groups_from_lines
from vigil.membership.liveness import Timings
from vigil.testing.simulation import SimCluster

GROUPS = groups_from_lines([("n1", ["IPaddr::198.51.100.100/24/eth0"]),
                            ("n2", ["IPaddr::198.51.100.101/24/eth0"])])
TIMINGS = Timings(keepalive=0.1, deadtime=0.5, warntime=0.3, initdead=1.0)
ACTION = (0.005, 0.05)
KEEPALIVE, DEADTIME, INITDEAD = 0.1, 0.5, 1.0
NET_DELAY = 0.002


def cluster(**kwargs) -> SimCluster:
    kwargs.setdefault("groups", GROUPS)
    kwargs.setdefault("timings", TIMINGS)
    kwargs.setdefault("action_delay", ACTION)
    return SimCluster(**kwargs)


def started(**kwargs) -> SimCluster:
    sim = cluster(**kwargs)
    sim.boot("n1")
    sim.boot("n2")
    sim.run_for(2.0)
    return sim


def holders(sim: SimCluster) -> list[set[str]]:
    return [set(sim.holders(g.index)) for g in GROUPS]


def decisions(sim: SimCluster, name: str) -> list[str]:
    return [f["reason"] for t, lvl, ev, f in sim.nodes[name].logs if ev == "ha.decision"]


# -- scenarios -------------------------------------------------------------------------------

def test_start_up_each_node_runs_its_home_group():
    assert holders(started()) == [{"n1"}, {"n2"}]


def test_failover_after_a_crash_takes_deadtime_plus_the_start():
    sim = started()
    crash_at = sim.sim.now()
    sim.crash("n2")
    sim.run_for(2.0)
    assert holders(sim) == [{"n1"}, {"n1"}]
    took = [t for t, i, h in sim.timeline if i == 1 and h == frozenset({"n1"})][-1]
    assert took - crash_at <= DEADTIME + ACTION[1] + 0.001


def test_one_link_cut_is_not_a_failover():
    sim = started()
    sim.cut("eth0")
    sim.run_for(5.0)
    assert holders(sim) == [{"n1"}, {"n2"}]
    link_dead = [f for t, lvl, ev, f in sim.nodes["n1"].logs if ev == "link.dead"]
    assert link_dead and link_dead[0]["link"] == "eth0"
    assert not [f for t, lvl, ev, f in sim.nodes["n1"].logs if ev == "peer.dead"]


def test_both_links_cut_is_a_takeover_and_healing_settles_within_a_keepalive():
    sim = started()
    sim.partition()
    sim.run_for(2.0)
    assert holders(sim) == [{"n1", "n2"}, {"n1", "n2"}]
    heal = sim.sim.now()
    sim.heal()
    sim.run_for(2.0)
    assert holders(sim) == [{"n1"}, {"n2"}]
    settled = max(t for t, i, h in sim.timeline if len(h) == 1 and t >= heal)
    assert settled - heal <= KEEPALIVE + ACTION[1] + NET_DELAY
    # the keepers re-announced their addresses
    assert {(n, i) for t, n, i in sim.announces if t >= heal} >= {("n1", 0), ("n2", 1)}


def test_auto_failback_on_brings_the_group_home_off_leaves_it():
    for mode, expected in (("on", [{"n1"}, {"n2"}]), ("off", [{"n1"}, {"n1"}])):
        sim = started(auto_failback=mode)
        sim.crash("n2")
        sim.run_for(2.0)
        sim.boot("n2")
        sim.run_for(3.0)
        assert holders(sim) == expected, mode


def test_auto_failback_on_brings_the_group_home_after_a_graceful_restart_too():
    sim = started(auto_failback="on")
    sim.command("n1", "shutdown")
    sim.run_for(1.0)
    assert holders(sim) == [{"n2"}, {"n2"}]
    sim.boot("n1")
    sim.run_for(3.0)
    assert holders(sim) == [{"n1"}, {"n2"}]


def test_standby_and_takeover_move_groups_giver_first():
    sim = started()
    sim.command("n1", "standby", "all")
    sim.run_for(1.0)
    assert holders(sim) == [{"n2"}, {"n2"}]
    sim.command("n1", "takeover", "all")
    sim.run_for(1.0)
    assert holders(sim) == [{"n1"}, {"n1"}]
    # never both, never a gap longer than the actions and one heartbeat
    for group in GROUPS:
        for start, stop, who in sim.intervals(group.index, sim.sim.now()):
            assert len(who) <= 1
            if not who and start > 1002:
                assert stop - start <= KEEPALIVE + 2 * ACTION[1]


def test_graceful_shutdown_hands_everything_over_at_once():
    sim = started()
    stop_at = sim.sim.now()
    sim.command("n1", "shutdown")
    sim.run_for(1.0)
    assert holders(sim) == [{"n2"}, {"n2"}]
    moved = [t for t, i, h in sim.timeline if i == 0 and h == frozenset({"n2"})][-1]
    assert moved - stop_at <= 2 * ACTION[1] + NET_DELAY  # not after deadtime
    assert not sim.nodes["n1"].up


def test_killed_daemon_leaves_its_group_and_is_settled_when_it_returns():
    sim = started()
    sim.crash("n1", keep_groups=True)  # kill -9: the address stays configured
    sim.run_for(2.0)
    assert holders(sim) == [{"n1", "n2"}, {"n2"}]
    sim.boot("n1")  # finds its group running, claims it: split-brain rule
    sim.run_for(2.0)
    assert holders(sim) == [{"n1"}, {"n2"}]


def test_replayed_packets_from_before_a_restart_change_nothing():
    sim = started()
    captured: list[bytes] = []
    network = sim.networks["eth0"]
    original = network.send

    def tap(sender, payload, to=None):
        if sender == "n2":
            captured.append(payload)
        original(sender, payload, to)

    network.send = tap  # type: ignore[method-assign]
    sim.run_for(1.0)
    sim.crash("n2")
    sim.run_for(1.0)
    assert holders(sim) == [{"n1"}, {"n1"}]
    engine = sim.nodes["n1"].engine
    for payload in captured:
        sim.nodes["n1"].apply(engine.receive(payload, "eth0", sim.sim.now()))
    sim.run_for(1.0)
    assert holders(sim) == [{"n1"}, {"n1"}]
    assert engine.liveness.node("n2").status == "dead"
    assert engine.rules.counters["replayed"] > 0


def test_loss_and_duplication_do_not_disturb_a_stable_pair():
    sim = started(loss=0.2, duplicate=0.1, seed=4)
    sim.run_for(30.0)
    assert holders(sim) == [{"n1"}, {"n2"}]
    assert sum(1 for t, i, h in sim.timeline if t > 1002) == 0


# -- random schedules ----------------------------------------------------------------------------

def random_schedule(sim: SimCluster, rng: random.Random, length: float) -> None:
    """Crashes, daemon kills, partitions, cut links, loss bursts, standby/takeover."""
    t = 1.5
    down: dict[str, float] = {}
    while t < length:
        t += rng.uniform(0.2, 3.0)
        kind = rng.choice(["crash", "kill", "partition", "cut", "loss", "standby", "takeover",
                           "shutdown", "nothing"])
        name = rng.choice(["n1", "n2"])

        def at(when, fn, *args):
            sim.sim.call_at(1000.0 + when, lambda: fn(*args))

        if kind in ("crash", "kill", "shutdown"):
            if down.get(name, 0) > t:
                continue
            back = t + rng.uniform(0.3, 4.0)
            down[name] = back
            if kind == "shutdown":
                at(t, sim.command, name, "shutdown")
            else:
                at(t, sim.crash, name, kind == "kill")
            at(back, lambda n=name: sim.nodes[n].up or sim.boot(n))
        elif kind == "partition":
            at(t, sim.partition)
            at(t + rng.uniform(0.1, 3.0), sim.heal)
        elif kind == "cut":
            link = rng.choice(sim.link_names)
            at(t, sim.cut, link)
            at(t + rng.uniform(0.1, 3.0), sim.mend, link)
        elif kind == "loss":
            burst = rng.uniform(0.3, 0.9)
            until = t + rng.uniform(0.2, 2.0)
            for network in sim.networks.values():
                normal = network.loss
                at(t, setattr, network, "loss", burst)
                at(until, setattr, network, "loss", normal)
        elif kind in ("standby", "takeover"):
            at(t, sim.command, name, kind, rng.choice(["local", "foreign", "all"]))


def up_intervals(sim: SimCluster, name: str, end: float) -> list[tuple[float, float]]:
    intervals, since = [], None
    for when, what in sim.events:
        if what == f"boot {name}":
            since = when
        elif what.startswith(f"crash {name}") and since is not None:
            intervals.append((since, when))
            since = None
    for when, _level, event, fields in sim.nodes[name].logs:
        if event == "ha.decision" and "leaving" in fields["reason"] and since is not None:
            intervals.append((since, when))
            since = None
    if since is not None:
        intervals.append((since, end))
    return intervals


def check_invariants(sim: SimCluster, end: float) -> list[str]:
    problems = []
    settle = KEEPALIVE + ACTION[1] + 2 * NET_DELAY + 1e-6
    gap_bound = DEADTIME + KEEPALIVE + 2 * ACTION[1] + 2 * NET_DELAY + 1e-6
    for group in GROUPS:
        for start, stop, who in sim.intervals(group.index, end):
            if len(who) >= 2:
                after = start + NET_DELAY
                heard = [sim.heard_after(a, b, after) for a, b in (("n1", "n2"), ("n2", "n1"))]
                if None in heard:
                    continue  # they never heard each other again: a real partition
                crossed = max(heard)  # type: ignore[type-var]
                if stop - crossed > settle:
                    problems.append(f"group {group} on both nodes {start - 1000:.3f}.."
                                    f"{stop - 1000:.3f}, {stop - crossed:.3f}s after they "
                                    "heard each other")
            elif not who:
                able = 0.0
                for name in ("n1", "n2"):
                    for up_start, up_stop in up_intervals(sim, name, end):
                        ready = up_start + INITDEAD + ACTION[1] + NET_DELAY
                        lo, hi = max(start, ready), min(stop, up_stop)
                        able = max(able, hi - lo)
                if able > gap_bound:
                    problems.append(f"group {group} unheld {start - 1000:.3f}.."
                                    f"{stop - 1000:.3f} while a node could run it "
                                    f"({able:.3f}s)")
    return problems


SCHEDULES = int(os.environ.get("VIGIL_SIM_SCHEDULES", "400"))


@pytest.mark.parametrize("batch", range(10))
def test_random_fault_schedules_keep_both_invariants(batch):
    failures = []
    for seed in range(batch, SCHEDULES, 10):
        rng = random.Random(seed)
        sim = cluster(seed=seed, loss=rng.choice([0.0, 0.05, 0.2]),
                      duplicate=rng.choice([0.0, 0.05]),
                      auto_failback=rng.choice(["on", "off", "legacy"]))
        sim.boot("n1")
        sim.sim.call_at(1000.0 + rng.uniform(0, 1.5), lambda s=sim: s.boot("n2"))
        random_schedule(sim, rng, length=12.0)
        sim.run_for(16.0)
        # calm: everything healed and booted; the cluster must converge
        sim.heal()
        for network in sim.networks.values():
            network.loss = 0.0
        for name in ("n1", "n2"):
            if not sim.nodes[name].up:
                sim.boot(name)
        sim.run_for(4.0)
        end = sim.sim.now()
        problems = check_invariants(sim, end)
        final = holders(sim)
        if any(len(h) != 1 for h in final):
            problems.append(f"after the calm: holders {final}")
        if problems:
            failures.append(f"seed {seed}: " + "; ".join(problems[:3]) + " events: "
                            + ", ".join(f"{t - 1000:.2f} {w}" for t, w in sim.events))
    assert not failures, "\n".join(failures[:5])
