"""The lease rule: a group runs on one node at a time, whatever the store's links do.

Nodes talk to a simulated etcd (leases expire on the store's own schedule,
counted from when it received a grant or keep-alive) through links that lose
requests and answers and are cut for random spells. The rule under test is
`vigil.cluster.lease`; the group's resources are taken as running from the
moment their start begins until their stop has ended.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from vigil.cluster.lease import Act, LeaseHolder, LeaseSettings, Phase, Request, Step

SETTINGS = LeaseSettings(ttl=6.0, margin=2.0, poll_every=0.5)


class Store:
    """etcd as the rule sees it: leases with a TTL and one key per group."""

    def __init__(self) -> None:
        self.leases: dict[int, tuple[str, float]] = {}
        self.key: tuple[str, int] | None = None
        self.ids = itertools.count(1)

    def _expire(self, now: float) -> None:
        for lease, (_, expires) in list(self.leases.items()):
            if expires <= now:
                del self.leases[lease]
                if self.key is not None and self.key[1] == lease:
                    self.key = None

    def grant(self, node: str, now: float) -> int:
        self._expire(now)
        lease = next(self.ids)
        self.leases[lease] = (node, now + SETTINGS.ttl)
        return lease

    def refresh(self, lease: int, now: float) -> float:
        self._expire(now)
        if lease not in self.leases:
            return 0.0
        self.leases[lease] = (self.leases[lease][0], now + SETTINGS.ttl)
        return SETTINGS.ttl

    def acquire(self, node: str, lease: int, now: float) -> tuple[bool, str | None]:
        self._expire(now)
        if self.key is None and lease in self.leases:
            self.key = (node, lease)
            return True, node
        return False, self.key[0] if self.key else None

    def look(self, now: float) -> str | None:
        self._expire(now)
        return self.key[0] if self.key else None

    def revoke(self, lease: int, now: float) -> None:
        self._expire(now)
        self.leases.pop(lease, None)
        if self.key is not None and self.key[1] == lease:
            self.key = None


@dataclass
class Node:
    name: str
    rule: LeaseHolder
    lease: int | None = None
    #: when the link to the store is cut: [(from, to)]
    cuts: list[tuple[float, float]] = field(default_factory=list)
    #: (began starting, finished stopping) of every time the group ran here
    runs: list[list[float]] = field(default_factory=list)
    busy: bool = False  # a start or stop is under way
    #: the one pending wake-up that counts (a newer step supersedes older ones)
    wake: int = 0

    def cut(self, at: float) -> bool:
        return any(a <= at < b for a, b in self.cuts)


class Simulation:
    """Two or three nodes for `until` seconds: links cut for spells of 0.5 to 20 s,
    5 % of requests and answers lost, a quarter of the answers slow (1 to 3.5 s);
    a start takes up to 1 s, a stop up to 1.9 s (inside the 2 s margin)."""

    def __init__(self, seed: int, nodes: int = 2, until: float = 300.0):
        self.rng = random.Random(seed)
        self.store = Store()
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.now = 0.0
        self.until = until
        self.nodes = [Node(f"n{i}", LeaseHolder(SETTINGS, f"n{i}", 0.0)) for i in range(nodes)]
        for node in self.nodes:
            at = self.rng.uniform(0, 5)
            while at < until:
                length = self.rng.choice((0.5, 2.0, 5.0, 9.0, 20.0))
                node.cuts.append((at, at + length))
                at += length + self.rng.uniform(2, 30)
            self.later(self.rng.uniform(0, 1), lambda n=node: self.step(n))
            node.wake = -1

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self.events, (self.now + delay, next(self.seq), callback))

    def run(self) -> None:
        while self.events:
            at, _, callback = heapq.heappop(self.events)
            if at > self.until:
                break
            self.now = at
            callback()

    def step(self, node: Node) -> None:
        if node.wake == -1:  # the first step
            node.wake = 0
        step = node.rule.step(self.now)
        if step.request is not None:
            self.send(node, step.request)
        if step.act is Act.START and not node.busy:
            node.busy = True
            node.runs.append([self.now, float("inf")])
            self.later(self.rng.uniform(0.05, 1.0), lambda: self.started(node))
        elif step.act is Act.STOP and not node.busy:
            node.busy = True
            self.later(self.rng.uniform(0.05, 1.9), lambda: self.stopped(node))
        token = node.wake = next(self.seq)
        wake = node.rule.next_deadline(self.now) - self.now
        self.later(max(wake, 0.01), lambda: self.woken(node, token))

    def woken(self, node: Node, token: int) -> None:
        if token == node.wake:
            self.step(node)

    def started(self, node: Node) -> None:
        node.busy = False
        node.rule.started()
        self.step(node)

    def stopped(self, node: Node) -> None:
        node.busy = False
        node.runs[-1][1] = self.now
        node.rule.stopped()
        self.step(node)

    def send(self, node: Node, request: Request) -> None:
        sent = self.now
        there = self.rng.uniform(0.001, 0.6)
        # now and then an answer crawls back (a congested link): it proves the lease
        # only from when its request was sent
        back = self.rng.uniform(1.0, 3.5) if self.rng.random() < 0.25 else \
            self.rng.uniform(0.001, 0.6)
        if self.rng.random() < 0.05 or node.cut(sent) or node.cut(sent + there):
            self.later(1.0, lambda: node.rule.failed(request, self.now))  # a timeout
            return

        def at_store() -> None:
            answer = self.serve(node, request, self.now)
            if node.cut(self.now + back) or self.rng.random() < 0.05:
                self.later(1.0 - there, lambda: node.rule.failed(request, self.now))
            else:
                self.later(back, lambda: self.answer(node, request, sent, answer))
        self.later(there, at_store)

    def serve(self, node: Node, request: Request, now: float) -> object:
        store = self.store
        if request is Request.GRANT:
            return store.grant(node.name, now)
        if request is Request.REFRESH:
            return store.refresh(node.lease, now) if node.lease else 0.0
        if request is Request.ACQUIRE:
            return store.acquire(node.name, node.lease, now) if node.lease else (False, None)
        if request is Request.LOOK:
            return store.look(now)
        store.revoke(node.lease, now) if node.lease else None
        return None

    def answer(self, node: Node, request: Request, sent: float, answer: object) -> None:
        rule = node.rule
        if request is Request.GRANT:
            assert isinstance(answer, int)
            node.lease = answer
            rule.granted(sent, SETTINGS.ttl)
        elif request is Request.REFRESH:
            assert isinstance(answer, float)
            rule.refreshed(sent, answer)
        elif request is Request.ACQUIRE:
            ours, holder = answer  # type: ignore[misc]
            rule.acquired(sent, ours, holder)
        elif request is Request.LOOK:
            rule.looked(sent, answer)  # type: ignore[arg-type]
        else:
            rule.revoked()
        self.step(node)


def overlaps(sim: Simulation) -> list[tuple[str, list[float], str, list[float]]]:
    found = []
    for a, b in itertools.combinations(sim.nodes, 2):
        for ra in a.runs:
            for rb in b.runs:
                if ra[0] < rb[1] and rb[0] < ra[1]:
                    found.append((a.name, ra, b.name, rb))
    return found


@pytest.mark.parametrize("seed", range(40))
def test_the_group_never_runs_on_two_nodes_and_moves_when_its_holder_is_cut_off(seed):
    sim = Simulation(seed, nodes=2 + seed % 2)
    sim.run()
    assert overlaps(sim) == []
    starts = sum(len(node.runs) for node in sim.nodes)
    assert starts >= 2, "the group should have run, and moved at least once"


def holding() -> LeaseHolder:
    """A rule that was granted a lease at 0.0, took the key and runs the group."""
    rule = LeaseHolder(SETTINGS, "n0", 0.0)
    assert rule.step(0.0).request is Request.GRANT
    rule.granted(0.0, SETTINGS.ttl)
    assert rule.step(0.0).request is Request.ACQUIRE
    rule.acquired(0.0, True, "n0")
    assert rule.step(0.0).act is Act.START
    rule.started()
    return rule


def test_a_holder_stops_the_margin_before_its_lease_could_lapse_in_the_store():
    rule = holding()
    # keep-alives fail from now on: the store may let the lease go at 0.0 + TTL
    assert rule.step(2.0).request is Request.REFRESH
    rule.failed(Request.REFRESH, 3.0)
    assert rule.step(3.5).request is Request.REFRESH
    rule.failed(Request.REFRESH, 3.9)
    assert rule.step(3.99).act is None
    stop = rule.step(SETTINGS.ttl - SETTINGS.margin)
    assert stop.act is Act.STOP and "stopping 2 s ahead" in stop.why
    rule.stopped()
    assert rule.phase is Phase.IDLE and not rule.running
    assert rule.step(5.0).request is Request.GRANT


def test_a_refresh_answered_late_counts_from_when_it_was_sent():
    rule = holding()
    assert rule.step(2.0).request is Request.REFRESH
    rule.refreshed(sent_at=2.0, ttl_left=SETTINGS.ttl)  # answered much later, say at 3.9
    assert rule.valid_until == 2.0 + SETTINGS.ttl  # not 3.9 + TTL
    assert rule.step(4.0).request is Request.REFRESH
    rule.refreshed(sent_at=4.0, ttl_left=0.0)  # the store says the lease is gone
    assert rule.step(4.1).act is Act.STOP


def test_a_holder_that_no_longer_wants_the_group_stops_it_then_revokes():
    rule = holding()
    rule.want(False)
    assert rule.step(1.0).act is Act.STOP
    rule.stopped()
    assert rule.step(1.5).request is Request.REVOKE
    rule.revoked()
    assert rule.phase is Phase.IDLE
    assert rule.step(1.6).request is Request.GRANT
    rule.granted(1.6, SETTINGS.ttl)
    assert rule.step(2.2).request is Request.LOOK  # it follows, it does not take


def test_a_holder_whose_stop_is_slow_keeps_its_lease_alive_until_the_stop_ends():
    """The group runs here until its stop ends: letting the lease lapse meanwhile would
    let another node start it while it still runs here."""
    rule = holding()
    rule.want(False)
    assert rule.step(1.0) == Step(act=Act.STOP, why="this node should no longer hold the group")
    now, refreshes = 1.0, 0
    while now < 3 * SETTINGS.ttl:  # a stop that takes three TTLs
        now += 0.25
        step = rule.step(now)
        assert rule.phase is Phase.HOLDING and step.act is Act.STOP
        if step.request is Request.REFRESH:
            refreshes += 1
            rule.refreshed(sent_at=now, ttl_left=SETTINGS.ttl)
    assert refreshes >= 3 * SETTINGS.ttl / SETTINGS.refresh - 1
    rule.stopped()
    assert rule.step(now + 0.1).request is Request.REVOKE


@pytest.mark.parametrize("seed", range(10))
def test_nodes_that_give_the_group_up_with_slow_stops_never_run_it_together(seed):
    """Each node in turn should not hold the group for a while (a failed monitor, standby)
    and its stop takes up to three TTLs; the store answers every request at once."""
    rng = random.Random(seed)
    nodes = [LeaseHolder(SETTINGS, f"n{i}", 0.0) for i in range(2 + seed % 2)]
    store, leases = Store(), [0] * len(nodes)
    runs: list[list[list[float]]] = [[] for _ in nodes]
    #: the start or stop under way on each node: (ends then, which)
    acting: list[tuple[float, Act] | None] = [None] * len(nodes)
    unwanted = [(rng.uniform(5, 40) + 60 * k, rng.uniform(1, 15)) for k in range(5)]
    now = 0.0
    while now < 320.0:
        now = round(now + 0.05, 2)
        for index, rule in enumerate(nodes):
            under_way = acting[index]
            if under_way is not None and under_way[0] <= now:
                acting[index] = None
                if under_way[1] is Act.START:
                    rule.started()
                else:
                    runs[index][-1][1] = now
                    rule.stopped()
            rule.want(not any(index == k % len(nodes) and a <= now < a + n
                              for k, (a, n) in enumerate(unwanted)))
            step = rule.step(now)
            if step.request is Request.GRANT:
                leases[index] = store.grant(rule.node, now)
                rule.granted(now, SETTINGS.ttl)
            elif step.request is Request.REFRESH:
                rule.refreshed(now, store.refresh(leases[index], now))
            elif step.request is Request.ACQUIRE:
                rule.acquired(now, *store.acquire(rule.node, leases[index], now))
            elif step.request is Request.LOOK:
                rule.looked(now, store.look(now))
            elif step.request is Request.REVOKE:
                store.revoke(leases[index], now)
                rule.revoked()
            if step.act is not None and acting[index] is None:
                if step.act is Act.START:
                    runs[index].append([now, float("inf")])
                    acting[index] = (now + rng.uniform(0.05, 1.0), Act.START)
                else:
                    acting[index] = (now + rng.uniform(0.05, 3 * SETTINGS.ttl), Act.STOP)
    spans = [(i, run) for i, node_runs in enumerate(runs) for run in node_runs]
    together = [(a, b) for (i, a), (j, b) in itertools.combinations(spans, 2)
                if i != j and a[0] < b[1] and b[0] < a[1]]
    assert together == []
    assert len(spans) >= 3, "the group should have moved"


def test_settings_that_leave_no_room_are_refused():
    with pytest.raises(ValueError, match="inside the lease TTL"):
        LeaseSettings(ttl=5, margin=5)
    with pytest.raises(ValueError, match="no second try"):
        LeaseSettings(ttl=6, margin=2, refresh_every=4)
