"""The etcd backend's daemon over a store with etcd's lease semantics kept in memory:
three nodes in one event loop, the group recorded where it runs, sampled every few
milliseconds. The real etcd, real daemons and real addresses are in
tests/lab/cluster/test_etcd_daemon_lab.py; here the placement rules run fast."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from vigil.cli.status import render
from vigil.cluster.etcd import Acquired, EtcdError
from vigil.cluster.lease import LeaseSettings
from vigil.ha import etcd_daemon
from vigil.ha.etcd_daemon import EtcdClusterDaemon
from vigil.ha.groups import Group
from vigil.ha.settings import read_settings

from .test_etcd_backend_config import ETCD, THREE, write_dir

NODES = ("server5.example.com", "server6.example.com", "server7.example.com")
LEASE = LeaseSettings(ttl=1.0, margin=0.4, poll_every=0.1)


class MemoryStore:
    """etcd's leases and create-if-absent, on the monotonic clock."""

    def __init__(self) -> None:
        self.leases: dict[int, tuple[float, int]] = {}
        self.keys: dict[str, tuple[str, int]] = {}
        self.next = 1

    def _purge(self) -> None:
        now = time.monotonic()
        for lease in [k for k, (until, _) in self.leases.items() if until <= now]:
            self._drop(lease)

    def _drop(self, lease: int) -> None:
        self.leases.pop(lease, None)
        for key in [k for k, (_, owner) in self.keys.items() if owner == lease]:
            del self.keys[key]

    def grant(self, ttl: int) -> tuple[int, int]:
        self._purge()
        lease, self.next = self.next, self.next + 1
        self.leases[lease] = (time.monotonic() + ttl, ttl)
        return lease, ttl

    def keepalive(self, lease: int) -> int:
        self._purge()
        if lease not in self.leases:
            return 0
        ttl = self.leases[lease][1]
        self.leases[lease] = (time.monotonic() + ttl, ttl)
        return ttl

    def acquire(self, key: str, node: str, lease: int) -> Acquired:
        self._purge()
        if key in self.keys:
            return Acquired(False, self.keys[key][0])
        if lease not in self.leases:
            raise EtcdError("requested lease not found")
        self.keys[key] = (node, lease)
        return Acquired(True, node)

    def holder(self, key: str) -> str | None:
        self._purge()
        found = self.keys.get(key)
        return found[0] if found else None

    def revoke(self, lease: int) -> None:
        self._drop(lease)


class NodeGateway:
    """One node's way to the store; `cut` makes every call fail as a partition does."""

    def __init__(self, store: MemoryStore):
        self.store = store
        self.cut = False

    def __getattr__(self, name: str):
        call = getattr(self.store, name)

        def guarded(*args):
            if self.cut:
                raise EtcdError("no etcd endpoint answered (cut off)")
            return call(*args)
        return guarded


class Recorder:
    """A group driver that records where the group runs (a start may be made to fail)."""

    def __init__(self, node: str, running: dict[str, set[str]]):
        self.node = node
        self.running = running
        self.fail_start = False
        #: how long a stop takes (the group runs here until it ends)
        self.stop_seconds = 0.0
        #: the monitor takes this long to end once cancelled
        self.monitor_lingers = 0.0

    async def monitor(self, group: Group) -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(self.monitor_lingers)
            raise
        return "never"

    async def start(self, group: Group) -> bool:
        if self.fail_start:
            return False
        self.running.setdefault(group.key, set()).add(self.node)
        return True

    async def stop(self, group: Group) -> bool:
        await asyncio.sleep(self.stop_seconds)
        self.running.setdefault(group.key, set()).discard(self.node)
        return True

    async def held(self, group: Group) -> bool:
        return self.node in self.running.get(group.key, set())

    async def announce(self, group: Group) -> None:
        pass


class Cluster:
    def __init__(self, directory: Path, sockets: Path):
        self.store = MemoryStore()
        self.running: dict[str, set[str]] = {}
        self.directory, self.sockets = directory, sockets
        self.daemons: dict[str, EtcdClusterDaemon] = {}
        self.tasks: dict[str, asyncio.Task[int]] = {}
        self.gateways: dict[str, NodeGateway] = {}
        self.drivers: dict[str, Recorder] = {}
        self.doubled: list[set[str]] = []

    def start(self, node: str) -> None:
        settings = read_settings(self.directory, me=node)
        gateway = self.gateways[node] = NodeGateway(self.store)
        driver = self.drivers[node] = Recorder(node, self.running)
        daemon = EtcdClusterDaemon(settings, driver, socket_path=self.sockets / f"{node}.sock",
                                   gateway=gateway, lease=LEASE)  # type: ignore[arg-type]
        self.daemons[node] = daemon
        self.tasks[node] = asyncio.ensure_future(daemon.run())

    async def stop(self, node: str) -> None:
        self.daemons[node].stop()
        await asyncio.wait_for(self.tasks.pop(node), 10)

    def holders(self) -> set[str]:
        return set(self.running.get("IPaddr::198.51.100.100/24/eth0", set()))

    async def sample(self) -> None:
        while True:
            if len(self.holders()) > 1:
                self.doubled.append(self.holders())
            await asyncio.sleep(0.002)

    async def wait(self, condition, timeout: float, what: str) -> float:
        began = time.monotonic()
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
        return time.monotonic() - began


def play(tmp_path: Path, scenario, auto_failback: str = "on") -> Cluster:
    d = write_dir(tmp_path, THREE.replace("auto_failback on", f"auto_failback {auto_failback}"),
                  ETCD)
    cluster = Cluster(d, tmp_path)

    async def main() -> None:
        sampler = asyncio.ensure_future(cluster.sample())
        try:
            await scenario(cluster)
        finally:
            for node in list(cluster.tasks):
                await cluster.stop(node)
            sampler.cancel()
    asyncio.run(main())
    assert cluster.doubled == [], "the group ran on two nodes at once"
    assert cluster.holders() == set(), "every node stopped the group on its way out"
    return cluster


def test_the_home_node_runs_the_group_another_takes_it_and_auto_failback_returns_it(tmp_path):
    home, other = NODES[0], {NODES[1], NODES[2]}

    async def scenario(cluster: Cluster) -> None:
        for node in NODES[1:]:
            cluster.start(node)
        cluster.start(home)
        await cluster.wait(lambda: cluster.holders() == {home}, 5, "the home node holds it")
        await cluster.stop(home)  # a clean stop revokes: the group moves at once
        await cluster.wait(lambda: len(cluster.holders() & other) == 1, 5, "moved")
        cluster.start(home)
        await cluster.wait(lambda: cluster.holders() == {home}, 5, "given back")
    play(tmp_path, scenario)


def test_without_auto_failback_the_holder_keeps_the_group(tmp_path):
    home = NODES[0]

    async def scenario(cluster: Cluster) -> None:
        cluster.start(NODES[1])
        await cluster.wait(lambda: cluster.holders() == {NODES[1]}, 5, "server6 holds it")
        cluster.start(home)
        await cluster.wait(lambda: [g["holder"] for g in cluster.daemons[home].status()[
            "groups"]] == [NODES[1]], 5, "the home node has looked")
        await asyncio.sleep(3 * LEASE.ttl)  # a negative window: nothing moves
        assert cluster.holders() == {NODES[1]}
    play(tmp_path, scenario, auto_failback="off")


def test_a_holder_cut_off_from_the_store_stops_before_another_node_starts(tmp_path):
    async def scenario(cluster: Cluster) -> None:
        for node in NODES:
            cluster.start(node)
        await cluster.wait(lambda: cluster.holders() == {NODES[0]}, 5, "the home node holds it")
        cluster.gateways[NODES[0]].cut = True
        took = await cluster.wait(lambda: len(cluster.holders()) == 1
                                  and NODES[0] not in cluster.holders(), 5, "moved")
        assert took <= LEASE.ttl + 1.0
        cluster.gateways[NODES[0]].cut = False
        await cluster.wait(lambda: cluster.holders() == {NODES[0]}, 5, "back home")
    play(tmp_path, scenario)


def test_a_failed_start_leaves_the_group_to_the_others_and_standby_moves_it(tmp_path):
    async def scenario(cluster: Cluster) -> None:
        cluster.start(NODES[1])
        cluster.drivers[NODES[1]].fail_start = True
        await asyncio.sleep(0.3)
        cluster.start(NODES[2])
        await cluster.wait(lambda: cluster.holders() == {NODES[2]}, 5, "server7 took it")
        answer = await cluster.daemons[NODES[2]]._control({"command": "standby"})
        assert answer["ok"]
        cluster.drivers[NODES[1]].fail_start = False
        await cluster.wait(lambda: cluster.holders() == {NODES[1]}, 10, "server6 took it")
        status = cluster.daemons[NODES[1]].status()
        assert status["backend"] == "etcd" and status["groups"][0]["phase"] == "holding"
        shown = render(status)  # as `vigil status` prints it
        assert f"held by {NODES[1]}; here holding, running" in shown
        assert "standby" in render(cluster.daemons[NODES[2]].status())
    play(tmp_path, scenario)


def test_a_slow_stop_keeps_the_lease_so_the_group_never_runs_on_two_nodes(tmp_path, monkeypatch):
    """The holder is put in standby; its monitor lingers when cancelled and its stop takes
    three TTLs: the group runs there until the stop ends, so no other node may start it
    before (the lease is kept alive meanwhile), and it moves right after."""
    monkeypatch.setattr(etcd_daemon, "MONITOR_END_GRACE", 0.2)

    async def scenario(cluster: Cluster) -> None:
        for node in NODES:
            cluster.start(node)
        await cluster.wait(lambda: cluster.holders() == {NODES[0]}, 5, "the home node holds it")
        home = cluster.drivers[NODES[0]]
        home.stop_seconds, home.monitor_lingers = 3 * LEASE.ttl, 30.0
        answer = await cluster.daemons[NODES[0]]._control({"command": "standby"})
        assert answer["ok"]
        took = await cluster.wait(lambda: len(cluster.holders()) == 1
                                  and NODES[0] not in cluster.holders(), 10, "moved")
        assert took >= 3 * LEASE.ttl, "it may move only once the stop has ended"
        home.stop_seconds = 0.0
    play(tmp_path, scenario)
