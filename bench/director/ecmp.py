"""Active-active directors behind an ECMP router, against the active/standby pair.

Three DR directors (nftables backend, the tutorial's ldirectord.cf) announce the
VIP to the lab's BIRD 2 router (`vigil lab up --topology ecmp`), which spreads
flows over them by an L4 hash: Linux's hash-threshold multipath (BIRD 2.0.12
installs plain multipath routes), or in `bird-bfd-resilient` a resilient
nexthop group (`vigil.lab.resilient` re-installs BIRD's route). From the client,
through the VIP, all the time:

- long-lived connections: HTTP/1.1 keep-alive, a GET on each every 0.25 s, a
  GET may take up to 10 s (TCP retransmits through a dead path) before the
  connection counts as broken;
- new connections: four clients back to back, each request on a new connection
  with 0.5 s to connect and answer.

Events, one after the other: one director crashes (power off: its BGP session
falls silent), it boots and comes back, one director drains and undrains. For
each: how long until the router's route changed (sampled every 20 ms from the
event on), the new requests that failed from the event until 2 s after the
change, the longest time no new request was answered, long-lived connections
broken, the longest a long-lived connection's GET took, and "moved": long-lived
flows the router sent to another director although theirs still announced
(`ip route get` with each flow's ports, before the event and after). Modes:

    exabgp    ExaBGP on each director, BGP hold time 3 s (BIRD's minimum)
    bird-bfd  BIRD on each director, BFD on the sessions (100 ms, 3 missed)
    bird-bfd-resilient  the same, the router's route a resilient nexthop group
    pair      the tutorial's director pair under `vigil heartbeat` (deadtime 1 s,
              warm standby) on the same lab: dir1 and dir2, the VIP on their link,
              the router reaching it by ARP; the active director crashes; "route
              changed" is the first answer through the standby

    .venv/bin/python bench/director/ecmp.py [--modes exabgp,bird-bfd,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from vigil.director.speaker import BIRD_FILE, bird_routes
from vigil.lab import Lab
from vigil.lab.host import Host
from vigil.lab.router import (
    BFD_INTERVAL_MS,
    BFD_MULTIPLIER,
    HOLD,
    first_address,
    flow_paths,
    nexthops,
    prepare,
    prepare_host,
    start_director_bird,
    start_router,
    start_speaker,
)
from vigil.lab.seed import lab_file
from vigil.lab.topology import ecmp_topology
from vigil.testing import director_pair, vigil_command, wait_until
from vigil.testing.http import HttpConnection

VIP = director_pair.VIP
DIRECTORS = ("dir1", "dir2", "dir3")
LONG_LIVED = 24
GET_EVERY = 0.25  # nginx closes a keep-alive connection after 1000 requests
NEW_CLIENTS = 4
NEW_TIMEOUT = 0.5
SETTLE = 2.0  # seconds after the route changed that still count as the event's


@dataclass
class Outcome:
    """What one event cost the client."""

    event: str
    changed_after: float | None
    new_failed: int
    new_made: int
    longest_unanswered: float
    broken: int
    longest_get: float
    #: long-lived flows whose director stayed yet the router sent elsewhere (None: no ECMP)
    moved: int | None = None


@dataclass
class Workload:
    """The client's long-lived and new connections through the VIP, recorded."""

    client: Host
    stopping: threading.Event = field(default_factory=threading.Event)
    #: (start, seconds, ok) of every new-connection request
    requests: list[tuple[float, float, bool]] = field(default_factory=list)
    #: (start, seconds) of every GET on a long-lived connection
    gets: list[tuple[float, float]] = field(default_factory=list)
    #: when each broken long-lived connection broke, and how
    broken: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    #: the long-lived connections' source ports
    ports: list[int] = field(default_factory=list)

    def start(self) -> None:
        connections = [HttpConnection(self.client, VIP, timeout=10.0)
                       for _ in range(LONG_LIVED)]
        self.ports = [c.local_port for c in connections]
        for connection in connections:
            connection.get()
        self.threads = [threading.Thread(target=self._keep, args=(c,), daemon=True)
                        for c in connections]
        self.threads += [threading.Thread(target=self._new, daemon=True)
                         for _ in range(NEW_CLIENTS)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def _keep(self, connection: HttpConnection) -> None:
        try:
            while not self.stopping.wait(GET_EVERY):
                began = time.time()
                try:
                    connection.get()
                except (OSError, ValueError) as exc:
                    self.broken.append(time.time())
                    self.errors.append(repr(exc))
                    return
                self.gets.append((began, time.time() - began))
        finally:
            connection.close()

    def _new(self) -> None:
        while not self.stopping.is_set():
            began = time.time()
            try:
                ok = director_pair.http_get(self.client, timeout=NEW_TIMEOUT) in ("rs1", "rs2")
            except OSError:
                ok = False
            self.requests.append((began, time.time() - began, ok))

    def outcome(self, event: str, began: float, changed: float | None) -> Outcome:
        """The event's share of the record: from `began` to SETTLE after the change."""
        end = (changed if changed is not None else time.time()) + SETTLE
        until(lambda: time.time() >= end, end - time.time() + 1)
        requests = [r for r in list(self.requests) if began <= r[0] < end]
        gets = [took for at, took in list(self.gets) if began <= at < end]
        alive = sum(1 for thread in self.threads[:LONG_LIVED] if thread.is_alive())
        print(f"  {event}: {alive} long-lived connections carrying, {len(gets)} GETs; "
              f"errors so far: {self.errors[-3:]}", flush=True)
        answered = sorted(at + took for at, took, ok in requests if ok)
        marks = [began, *answered, end]
        return Outcome(event, None if changed is None else changed - began,
                       sum(1 for r in requests if not r[2]), len(requests),
                       max(b - a for a, b in itertools.pairwise(marks)),
                       sum(1 for at in list(self.broken) if began <= at < end),
                       max(gets, default=0.0))


def until(condition: Callable[[], bool], timeout: float) -> None:
    wait_until(condition, max(timeout, 0.1), "the bench's deadline", interval=0.02)


@dataclass
class RouteWatcher:
    """The router's nexthops for the VIP, sampled every 20 ms (a host's power-off
    call returns only once the host is gone: the route may change before)."""

    router: Host
    samples: list[tuple[float, list[str]]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.stopping.wait(0.02):
            self.samples.append((time.time(), nexthops(self.router, f"{VIP}/32")))

    def changed(self, since: float, wanted: list[str]) -> float | None:
        return next((at for at, hops in list(self.samples) if at >= since and hops == wanted),
                    None)


class EcmpDirectors:
    """The ecmp lab's three directors, announcing with ExaBGP or with BIRD + BFD."""

    def __init__(self, lab: Lab, speaker: str, resilient: bool = False):
        self.lab, self.speaker, self.resilient = lab, speaker, resilient
        self.router = first_address(lab.host("router"))
        self.watcher = RouteWatcher(lab.host("router"))

    def start(self) -> None:
        prepare(self.lab, VIP, bfd=self.speaker == "bird-bfd", resilient=self.resilient)
        director_pair.configure_real_servers(self.lab)
        for name in DIRECTORS:
            self.lab.host(name).write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
            self.start_director(name)
        wanted = sorted(first_address(self.lab.host(n)) for n in DIRECTORS)
        until(lambda: self.announcing() == wanted, 60)

    def start_director(self, name: str) -> None:
        director = self.lab.host(name)
        if self.speaker == "exabgp":
            start_speaker(director, self.router, vigil_command(
                "director", "-d", "--announce", "exabgp", "--announce-linger", "1",
                "--backend", "nftables", "start"))
            return
        start_director_bird(director, self.router, BIRD_FILE, bird_routes([]), bfd=True)
        director.spawn(vigil_command("director", "-d", "--announce", "bird", "--backend",
                                     "nftables", "start"), name="director")

    def announcing(self) -> list[str]:
        return nexthops(self.lab.host("router"), f"{VIP}/32")

    def wait_for(self, names: tuple[str, ...], since: float, timeout: float) -> float:
        """Wait until the router's route went through exactly `names` after `since`;
        when it first did."""
        wanted = sorted(first_address(self.lab.host(n)) for n in names)
        until(lambda: self.watcher.changed(since, wanted) is not None, timeout)
        changed = self.watcher.changed(since, wanted)
        assert changed is not None
        return changed

    def paths(self, workload: Workload) -> dict[int, str]:
        """The director the router sends each long-lived connection's flow to."""
        client = first_address(self.lab.host("client"), "wan")
        return flow_paths(self.lab.host("router"), client, workload.ports, VIP, 80)

    def outcome(self, workload: Workload, event: str, began: float, changed: float,
                before: dict[int, str]) -> Outcome:
        """The event's outcome, with the long-lived flows the router moved although
        their director still carries the VIP."""
        outcome = workload.outcome(event, began, changed)
        after, staying = self.paths(workload), set(self.announcing())
        outcome.moved = sum(1 for port, hop in before.items()
                            if hop in staying and after.get(port, hop) != hop)
        return outcome

    def run(self, workload: Workload) -> list[Outcome]:
        outcomes = []
        self.watcher.start()
        try:
            before, began = self.paths(workload), time.time()
            self.lab.crash("dir3")
            changed = self.wait_for(("dir1", "dir2"), began, HOLD + 10)
            outcomes.append(self.outcome(workload, "crash dir3", began, changed, before))

            before, began = self.paths(workload), time.time()
            self.lab.boot("dir3")
            prepare_host(self.lab, self.lab.host("dir3"), VIP)
            self.start_director("dir3")
            changed = self.wait_for(DIRECTORS, began, 60)
            outcomes.append(self.outcome(workload, "dir3 boots, back", began, changed, before))

            for verb, names in (("drain", ("dir2", "dir3")), ("undrain", DIRECTORS)):
                before, began = self.paths(workload), time.time()
                director_pair.vigil(self.lab.host("dir1"), "director", verb)
                changed = self.wait_for(names, began, 15)
                outcomes.append(self.outcome(workload, f"{verb} dir1", began, changed, before))
        finally:
            self.watcher.stopping.set()
        return outcomes


def ecmp(speaker: str, resilient: bool = False) -> list[Outcome]:
    with Lab(ecmp_topology(3)) as lab:
        directors = EcmpDirectors(lab, speaker, resilient)
        directors.start()
        workload = Workload(lab.host("client"))
        workload.start()
        try:
            return directors.run(workload)
        finally:
            workload.stop()


#: The active/standby pair on the same lab: dir1 and dir2, heartbeat on their one link
ECMP_PAIR = director_pair.PairLayout("dir1", "dir2",
                                     ("ucast eth0 198.51.100.5", "ucast eth0 198.51.100.6"))


def pair() -> list[Outcome]:
    """The active/standby pair on the ecmp lab (the router ARPs for the VIP on the
    directors' link, no BGP): the active director crashes, the warm standby takes over."""
    with Lab(ecmp_topology(3)) as lab:
        router = lab.host("router")
        start_router(router, [])
        for host in lab.hosts.values():
            if host is not router:
                prepare_host(lab, host, None)
        daemons = director_pair.start_pair(lab, warm=True, layout=ECMP_PAIR)
        workload = Workload(lab.host("client"))
        workload.start()
        standby, active = daemons[ECMP_PAIR.standby], ECMP_PAIR.active
        try:
            began = time.time()
            lab.crash(active)
            until(lambda: director_pair.log_time(standby.output(), "peer.dead",
                                                 active) is not None, 30)
            detected = director_pair.log_time(standby.output(), "peer.dead", active)
            assert detected is not None

            def answered() -> float | None:
                return next((at + took for at, took, ok in sorted(workload.requests)
                         if ok and at >= detected), None)

            until(lambda: answered() is not None, 30)
            return [workload.outcome(f"crash {active} (active)", began, answered())]
        finally:
            workload.stop()


MODES: dict[str, tuple[str, Callable[[], list[Outcome]]]] = {
    "exabgp": (f"ExaBGP, BGP hold time {HOLD} s", lambda: ecmp("exabgp")),
    "bird-bfd": (f"BIRD, BFD {BFD_INTERVAL_MS} ms x {BFD_MULTIPLIER}", lambda: ecmp("bird-bfd")),
    "bird-bfd-resilient": (f"BIRD, BFD {BFD_INTERVAL_MS} ms x {BFD_MULTIPLIER}, "
                           "resilient nexthop group on the router",
                           lambda: ecmp("bird-bfd", resilient=True)),
    "pair": ("active/standby pair, vigil heartbeat deadtime 1 s, warm standby", pair),
}


def report(results: dict[str, list[Outcome]]) -> str:
    lines = []
    for mode, outcomes in results.items():
        lines.append(f"\n== {mode}: {MODES[mode][0]} ==")
        lines.append(f"{'event':<24} {'route changed':>13} {'new requests failed':>22} "
                     f"{'unanswered':>10} {'broken':>9} {'longest GET':>11} {'moved':>9}")
        for o in outcomes:
            changed = "-" if o.changed_after is None else f"{o.changed_after:.2f} s"
            share = o.new_failed / o.new_made if o.new_made else 0.0
            lines.append(f"{o.event:<24} {changed:>13} "
                         f"{f'{o.new_failed} of {o.new_made} ({share:.1%})':>22} "
                         f"{o.longest_unanswered:>8.2f} s {f'{o.broken} of {LONG_LIVED}':>9} "
                         f"{o.longest_get:>9.2f} s "
                         f"{'-' if o.moved is None else f'{o.moved} of {LONG_LIVED}':>9}")
    crashes = {mode: outcomes[0] for mode, outcomes in results.items()}
    if "pair" in crashes and crashes["pair"].new_failed:
        base = crashes["pair"].new_failed
        for mode in ("exabgp", "bird-bfd", "bird-bfd-resilient"):
            if mode in crashes:
                lines.append(f"\nnew requests failed in a director crash, {mode} / pair: "
                             f"{crashes[mode].new_failed / base:.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="exabgp,bird-bfd,bird-bfd-resilient,pair")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(unknown)} (known: {', '.join(MODES)})")
    results = {}
    for mode in modes:
        print(f"running {mode} ...", flush=True)
        results[mode] = MODES[mode][1]()
    print(report(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({m: [asdict(o) for o in r] for m, r in results.items()}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
