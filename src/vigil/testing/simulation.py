"""Whole clusters of `NodeEngine`s on a fake clock and lossy in-memory links.

Each link (ha.cf medium) is its own `LossyNetwork`; group actions take a
random time; a crash takes the node's groups down with it (power loss); a
fence powers the peer off. Every change of who runs a group is recorded, so
tests can check the invariants over thousands of random schedules:

* two nodes run the same group only while they cannot hear each other, and
  for at most a keepalive (plus the stop) after a heartbeat crosses;
* a group is never left unheld for longer than deadtime + keepalive (plus
  the actions) while a node that could run it is up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from vigil.ha.decision import Announce, Fence, StartGroup, StopGroup
from vigil.ha.engine import NodeConfig, NodeEngine, Output
from vigil.ha.groups import Group
from vigil.membership.auth import AuthKeys
from vigil.membership.liveness import Timings
from vigil.testing.network import LossyNetwork, Simulator


@dataclass
class SimNode:
    name: str
    cluster: SimCluster
    engine: NodeEngine | None = None
    generation: int = 100
    #: groups whose resources are (perhaps partly) up on this machine
    active: set[int] = field(default_factory=set)
    wakeup_at: float | None = None
    logs: list[tuple[float, str, str, dict]] = field(default_factory=list)
    #: when this node last accepted a heartbeat from each peer
    heard_status: dict[str, float] = field(default_factory=dict)
    start_ok: bool = True
    stop_ok: bool = True

    @property
    def up(self) -> bool:
        return self.engine is not None

    def boot(self) -> None:
        cluster = self.cluster
        self.generation += 1
        now = cluster.sim.now()
        self.engine = NodeEngine(cluster.config_for(self.name), uuid=self.name.encode().ljust(16),
                                 generation=self.generation, now=now,
                                 rng=random.Random(cluster.rng.random()))
        for network in cluster.networks.values():
            network.set_down(self.name, False)
        for index in sorted(self.active):  # left running by an earlier life (daemon kill)
            self.engine.adopt(index)
        self.apply(self.engine.start(now))

    def crash(self, keep_groups: bool = False) -> None:
        """Power loss (groups gone) or, with keep_groups, a kill -9 of the daemon only."""
        self.engine = None
        self.wakeup_at = None
        if not keep_groups:
            for index in sorted(self.active):
                self.cluster.set_active(self.name, index, False)
        if not keep_groups:
            for network in self.cluster.networks.values():
                network.set_down(self.name, True)

    def apply(self, out: Output) -> None:
        cluster = self.cluster
        now = cluster.sim.now()
        for line in out.logs:
            self.logs.append((now, line.level, line.event, line.fields))
        engine = self.engine
        if engine is None:
            return
        for packet in out.packets:
            for network in cluster.networks.values():
                network.send(self.name, packet)
        for action in out.actions:
            self.perform(action, engine)
        if out.exit:
            cluster.sim.call_later(0.0, lambda: self.crash(keep_groups=True))
            return
        self.schedule()

    def perform(self, action: object, engine: NodeEngine) -> None:
        cluster = self.cluster
        delay = cluster.rng.uniform(*cluster.action_delay)
        if isinstance(action, StartGroup):
            cluster.set_active(self.name, action.group.index, True)
            ok = self.start_ok

            def started() -> None:
                # The agents finish their work even if the daemon died meanwhile.
                if not ok:
                    cluster.set_active(self.name, action.group.index, False)
                if self.engine is engine:
                    self.apply(engine.completed(action, ok, cluster.sim.now()))
            cluster.sim.call_later(delay, started)
        elif isinstance(action, StopGroup):
            ok = self.stop_ok

            def stopped() -> None:
                if ok and (self.engine is engine or not self.up):
                    cluster.set_active(self.name, action.group.index, False)
                if self.engine is engine:
                    self.apply(engine.completed(action, ok, cluster.sim.now()))
            cluster.sim.call_later(delay, stopped)
        elif isinstance(action, Fence):
            def fenced() -> None:
                target = cluster.nodes[action.node]
                if target.up or target.active:
                    target.crash()
                if self.engine is engine:
                    self.apply(engine.completed(action, cluster.fence_works, cluster.sim.now()))
            cluster.sim.call_later(delay, fenced)
        elif isinstance(action, Announce):
            cluster.announces.append((cluster.sim.now(), self.name, action.group.index))

    def schedule(self) -> None:
        engine = self.engine
        if engine is None:
            return
        sim = self.cluster.sim
        deadline = max(engine.next_deadline(sim.now()), sim.now())
        if self.wakeup_at is not None and self.wakeup_at <= deadline:
            return
        self.wakeup_at = deadline

        def wake() -> None:
            if self.engine is not engine or self.wakeup_at != deadline:
                return
            self.wakeup_at = None
            self.apply(engine.tick(sim.now()))
        sim.call_at(deadline, wake)

    def receive(self, link: str, sender: str, payload: bytes) -> None:
        engine = self.engine
        if engine is None:
            return
        before = engine.counters["accepted"]
        self.apply(engine.receive(payload, link, self.cluster.sim.now()))
        if engine.counters["accepted"] > before and b"(0)t=status," in payload:
            self.heard_status[sender] = self.cluster.sim.now()
            self.cluster.status_deliveries.append((self.cluster.sim.now(), sender, self.name))


class SimCluster:
    """Two (or one) nodes, their links, their groups, and a record of every holder change."""

    def __init__(self, *, seed: int = 0, nodes: tuple[str, ...] = ("n1", "n2"),
                 links: tuple[str, ...] = ("eth0", "eth1"),
                 timings: Timings | None = None,
                 groups: tuple[Group, ...] = (), auto_failback: str = "on",
                 loss: float = 0.0, duplicate: float = 0.0,
                 delay: tuple[float, float] = (0.0002, 0.002),
                 action_delay: tuple[float, float] = (0.005, 0.05),
                 configure: Callable[[NodeConfig], NodeConfig] | None = None,
                 keys: AuthKeys | None = None):
        self.sim = Simulator()
        self.sim.clock.set(1000.0)
        self.rng = random.Random(seed)
        self.timings = timings or Timings(keepalive=0.1, deadtime=0.5, initdead=1.0)
        self.groups = groups
        self.auto_failback = auto_failback
        self.action_delay = action_delay
        self.fence_works = True
        self.configure = configure
        self.keys = keys or AuthKeys.from_pairs(1, {1: ("sha1", "simulated")})
        self.node_names = nodes
        self.link_names = links
        self.networks = {
            link: LossyNetwork(self.sim, seed=self.rng.randrange(2**32), loss=loss,
                               duplicate=duplicate, min_delay=delay[0], max_delay=delay[1])
            for link in links}
        self.nodes = {name: SimNode(name, self) for name in nodes}
        for link, network in self.networks.items():
            for name, node in self.nodes.items():
                network.attach(name, lambda sender, payload, node=node, link=link:
                               node.receive(link, sender, payload))
        self.timeline: list[tuple[float, int, frozenset[str]]] = [
            (self.sim.now(), g.index, frozenset()) for g in groups]
        self.status_deliveries: list[tuple[float, str, str]] = []
        self.announces: list[tuple[float, str, int]] = []
        self.events: list[tuple[float, str]] = []

    def config_for(self, name: str) -> NodeConfig:
        config = NodeConfig(me=name, nodes=self.node_names, links=self.link_names,
                            timings=self.timings, keys=self.keys, groups=self.groups,
                            auto_failback=self.auto_failback, negotiation_timeout=2.0)
        return self.configure(config) if self.configure else config

    # -- faults and operations -------------------------------------------------------------------
    def note(self, what: str) -> None:
        self.events.append((self.sim.now(), what))

    def boot(self, name: str) -> None:
        self.note(f"boot {name}")
        self.nodes[name].boot()

    def crash(self, name: str, keep_groups: bool = False) -> None:
        self.note(f"crash {name}" + (" (daemon only)" if keep_groups else ""))
        self.nodes[name].crash(keep_groups)

    def partition(self) -> None:
        self.note("partition")
        a, b = self.node_names
        for network in self.networks.values():
            network.partition(a, b)

    def heal(self) -> None:
        self.note("heal")
        for network in self.networks.values():
            network.heal()

    def cut(self, link: str) -> None:
        self.note(f"cut {link}")
        a, b = self.node_names
        self.networks[link].partition(a, b)

    def mend(self, link: str) -> None:
        self.note(f"mend {link}")
        self.networks[link].heal()

    def command(self, name: str, command: str, which: str = "all") -> None:
        node = self.nodes[name]
        if node.engine is not None:
            self.note(f"{command} {which} on {name}")
            node.apply(node.engine.command(command, self.sim.now(), which))

    def ping(self, name: str, pingnode: str) -> None:
        node = self.nodes[name]
        if node.engine is not None:
            node.apply(node.engine.ping_reply(pingnode, self.sim.now()))

    def run_for(self, seconds: float) -> None:
        self.sim.run_for(seconds)

    # -- the record ------------------------------------------------------------------------------
    def set_active(self, name: str, index: int, active: bool) -> None:
        node = self.nodes[name]
        if active:
            node.active.add(index)
        else:
            node.active.discard(index)
        holders = frozenset(n.name for n in self.nodes.values() if index in n.active)
        last = [h for t, i, h in self.timeline if i == index][-1]
        if holders != last:
            self.timeline.append((self.sim.now(), index, holders))

    def holders(self, index: int) -> frozenset[str]:
        return frozenset(n.name for n in self.nodes.values() if index in n.active)

    def intervals(self, index: int, end: float) -> list[tuple[float, float, frozenset[str]]]:
        changes = [(t, h) for t, i, h in self.timeline if i == index]
        result = []
        for (start, holders), (stop, _) in zip(changes, [*changes[1:], (end, None)],
                                               strict=True):
            if stop > start:
                result.append((start, stop, holders))
        return result

    def heard_after(self, receiver: str, sender: str, after: float) -> float | None:
        for when, source, target in self.status_deliveries:
            if when >= after and source == sender and target == receiver:
                return when
        return None
