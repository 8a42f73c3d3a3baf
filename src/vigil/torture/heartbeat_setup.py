"""The heartbeat setup under faults: the demo's MariaDB pair, and the hands that hurt it.

A thin shell over the lab: it builds what `vigil demo heartbeat` builds (its own
`configure`, `Pair` and `Client`), with the campaign's shorter timings and a
second heartbeat medium, and turns each planned fault into lab operations.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vigil.demo import heartbeat_scene
from vigil.demo.heartbeat_scene import poll
from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.errors import VigilError
from vigil.lab import Lab
from vigil.lab.seed import lab_file
from vigil.torture.arp_watch import ArpWatcher, stale_spans
from vigil.torture.checks import (
    DUAL_BOUND,
    Injected,
    Outcome,
    Query,
    Sample,
    dual_windows,
    unexcused_spans,
)
from vigil.torture.schedule import Fault, FaultKind, Role, Timing

NODES = heartbeat_scene.NODES
HOME = "server5"
#: The campaign's timings (the tutorial's are keepalive 2, deadtime 30: a fault a minute).
TIMING = Timing(keepalive=0.5, deadtime=3.0)
#: How long a kill -9'd daemon may take to be gone before it is restarted anyway.
DEATH_DEADLINE = 10.0
#: How often the observer reads both nodes' interfaces.
SAMPLE_EVERY = 0.1
#: The service's resource script (haresources' `mysqld`), which stop-fails breaks.
SERVICE_SCRIPT = "/etc/init.d/mysqld"
#: What stop-fails puts in its place: every action but stop goes to the real script.
FAILING_STOP = """#!/bin/sh
# vigil torture, stop-fails: this service will not stop
if [ "$1" = stop ]; then echo "mysqld: stop refused (a service that fails to stop)"; exit 1; fi
exec /bin/sh {real} "$@"
"""
#: How long the node may take to give up on the stop (heartbeat and vigil both try 10
#: times, a second apart, after the first attempt) and react.
STOP_FAILURE_DEADLINE = 40.0


class SetupFailed(VigilError):
    """The setup could not be brought up (or back up): the campaign cannot go on."""


def campaign_ha_cf() -> str:
    """The tutorial's ha.cf with shorter timings and the hb link as a second medium."""
    lines = []
    timings = {"keepalive": "500ms", "warntime": "2", "deadtime": "3", "initdead": "6"}
    for line in lab_file("ha.cf").splitlines():
        word = line.split()[0] if line.split() else ""
        if word in timings:
            line = f"{word} {timings[word]}"
        lines.append(line)
        if word == "bcast":
            lines += ["ucast eth1 203.0.113.5", "ucast eth1 203.0.113.6"]
    return "\n".join(lines) + "\n"


@dataclass(eq=False)
class Sampler(threading.Thread):
    """Takes a look every `every` s (which nodes carry the VIP, which volumes take
    writes) and keeps each as a `Sample`; a look that raises is no sample this time
    (a node between power-off and boot)."""

    look: Callable[[], frozenset[str]]
    every: float = SAMPLE_EVERY
    samples: list[Sample] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name="torture-sampler", daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            at = time.monotonic()
            try:
                found = self.look()
            except Exception:
                found = None
            if found is not None:
                self.samples.append(Sample(at, found))
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:
            self.join(timeout=10)


class HeartbeatSetup:
    """The tutorial's heartbeat pair (IPaddr + mysqld) in a lab, with a client and an observer."""

    name = "heartbeat"
    timing = TIMING
    home = HOME

    def __init__(self, lab: Lab):
        self.lab = lab
        self.log = io.StringIO()
        self.result = SceneResult("torture heartbeat")
        self.pair = heartbeat_scene.Pair(lab, Timeline(out=self.log), self.result,
                                         lab.address("vip"))
        self.client = heartbeat_scene.Client(lab, self.pair.vip)
        #: which nodes carry the VIP on their interfaces
        self.observer = Sampler(lambda: frozenset(self.pair.holders()))
        self.stopped: set[str] = set()
        #: what the faults found wrong beyond the checker's invariants, for the end
        self.findings: list[str] = []
        #: who answers ARP for the VIP as the client sees it (from the start on)
        self.arp: ArpWatcher | None = None

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Configure both nodes, start their daemons, then watch and serve."""
        self.configure()
        for node in NODES:
            self._start_daemon(node)
        self.ready()
        self.observer.start()
        self.watch_arp()
        self.client.start()

    def watch_arp(self) -> None:
        """Start asking, from the client, who answers ARP for the VIP."""
        self.arp = ArpWatcher(self.lab, self.pair.vip)
        self.arp.start()

    def configure(self) -> None:
        if not heartbeat_scene.configure(self.lab, self.pair.timeline, self.result,
                                         ha_cf=campaign_ha_cf()):
            raise SetupFailed("; ".join(self.result.problems))

    def ready(self) -> None:
        """What must hold before the client starts (nothing more here)."""

    def after_boot(self, node: str) -> None:
        """What a booting node runs (systemd's units): here, vigil heartbeat."""
        self._start_daemon(node)

    def stop(self) -> None:
        """Resume what is stopped, end the client and the observer (if they ever started)."""
        for node in list(self.stopped):
            self._resume(node)
        if self.client.ident is not None:
            self.client.stop()
        if self.observer.ident is not None:
            self.observer.stop()
        if self.arp is not None:
            self.arp.stop()

    def _start_daemon(self, node: str) -> None:
        if not self.pair.start_heartbeat(node):
            raise SetupFailed(self.result.problems[-1])

    # -- what was seen -----------------------------------------------------------------------
    @property
    def samples(self) -> list[Sample]:
        return list(self.observer.samples)

    def queries(self) -> list[Query]:
        return [Query(a.at, a.done, a.node is not None, a.node) for a in list(self.client.answers)]

    def holder(self) -> str | None:
        samples = self.observer.samples
        holders = samples[-1].holders if samples else frozenset()
        return next(iter(holders)) if len(holders) == 1 else None

    def node_for(self, role: Role) -> str:
        active = self.holder() or HOME
        return active if role is Role.ACTIVE else next(n for n in NODES if n != active)

    # -- faults ------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Injected:
        """Do `fault`, hold it, heal it; returns when and on which node."""
        before = self.holder()
        target = self.node_for(fault.role)
        other = next(n for n in NODES if n != target)
        injected = time.monotonic()
        kind, hold = fault.kind, fault.hold
        note = ""
        if kind is FaultKind.POWER_OFF:
            self.lab.crash(target)
            time.sleep(hold)
            self.lab.boot(target)
            self.after_boot(target)
        elif kind is FaultKind.KILL_DAEMON:
            self.signal_daemon(target, signal.SIGKILL)
            gone = poll(lambda: not self.daemon_alive(target), DEATH_DEADLINE)
            note = (f"the killed daemon was gone after {time.monotonic() - injected:.2f} s"
                    if gone else f"the killed daemon still existed after {DEATH_DEADLINE:g} s")
            time.sleep(hold)
            self._start_daemon(target)
        elif kind is FaultKind.KILL_SERVICE:
            for pid in heartbeat_scene.pids_of(self.lab, target, "mariadbd"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        elif kind is FaultKind.CUT_MEDIUM:
            self.lab.link_down(target, "hb")
            time.sleep(hold)
            self.lab.link_up(target, "hb")
        elif kind is FaultKind.FLAP:
            end = time.monotonic() + hold
            while time.monotonic() < end:
                self.lab.link_down(target, "hb")
                time.sleep(min(fault.period, max(0.0, end - time.monotonic())))
                self.lab.link_up(target, "hb")
                time.sleep(min(fault.period, max(0.0, end - time.monotonic())))
        elif kind is FaultKind.PARTITION:
            self.lab.partition(target, other)
            time.sleep(hold)
            self.lab.heal(target, other)
        elif kind is FaultKind.LOSS:
            self.lab.lossy(target, fault.percent)
            time.sleep(hold)
            self.lab.lossless()
        elif kind is FaultKind.DELAY:
            self.lab.delayed(target, fault.delay)
            time.sleep(hold)
            self.lab.undelayed()
        elif kind is FaultKind.STALL:
            self.stopped.add(target)
            self.signal_daemon(target, signal.SIGSTOP)
            time.sleep(hold)
            self._resume(target)
        elif kind is FaultKind.STOP_FAILS:
            note = self._stop_fails(target, other)
        elif kind is FaultKind.CLOCK_JUMP:
            host = self.lab.host(target)
            if not host.clock_steps_allowed:
                raise SetupFailed(f"{target}'s wall clock cannot be stepped: the campaign "
                                  "starts its daemons with a clock of their own only when "
                                  "--kinds names clock-jump")
            host.step_clock(fault.step)
            stepped = host.run(["date", "+%s"], check=False).stdout.strip()
            offset = int(stepped) - time.time() if stepped.isdigit() else None
            time.sleep(hold)
            host.step_clock(0)
            if offset is not None:
                note = f"{target}'s clock read {offset:+.0f} s"
        else:
            note = self.other_fault(fault, target) or ""
        return Injected(fault, target, injected, time.monotonic(), before, note)

    def _stop_fails(self, target: str, other: str) -> str:
        """Break the service's stop on `target`, ask it to stand by, watch, repair.

        While the node fights its service, MariaDB must never run on both nodes
        (a finding for the end if it does). Once the node has reacted (given up
        on the stop), the script is repaired and the node brought back as its
        operator would: booted if it went down, restarted if its daemon went.
        """
        host = self.lab.host(target)
        real = SERVICE_SCRIPT + ".real"
        host.write_file(real, heartbeat_scene.MYSQLD_SCRIPT, mode=0o755)
        host.write_file(SERVICE_SCRIPT, FAILING_STOP.format(real=real), mode=0o755)
        mark = self.stop_failure_mark(target)
        said = self.ask_standby(target)
        asked = time.monotonic()
        both = 0.0
        last = asked
        reacted: float | None = None
        # a refused request stops nothing (the peer cannot take the group): nothing to await
        refused = " refused" in said
        while not refused and time.monotonic() - asked < STOP_FAILURE_DEADLINE:
            now = time.monotonic()
            up = [n for n in (target, other) if self.lab.host(n).is_up()]
            if len(up) == 2 and all(heartbeat_scene.pids_of(self.lab, n, "mariadbd")
                                    for n in up):
                both += now - last
            last = now
            if reacted is None and self.stop_failure_seen(target, mark):
                reacted = now
            if reacted is not None and now - reacted >= self.timing.deadtime + 2.0:
                break  # and what the peer does about it in the next deadtime
            time.sleep(0.2)
        if both > 0:
            self.findings.append(f"stop-fails on {target}: MariaDB ran on both nodes for "
                                 f"{both:.1f} s")
        if reacted is not None:
            note = (f"{self.stop_failure_words(target)} {reacted - asked:.1f} s after the "
                    "standby request")
        elif refused:
            note = f"the standby request was refused ({said}), so no stop was tried"
        else:
            note = (f"no reaction to the failed stop within {STOP_FAILURE_DEADLINE:g} s "
                    f"(the standby request answered: {said or 'nothing'})")
        if not host.is_up():
            self.lab.boot(target)
            host.write_file(SERVICE_SCRIPT, heartbeat_scene.MYSQLD_SCRIPT, mode=0o755)
            self.after_boot(target)
            return note + "; booted"
        host.write_file(SERVICE_SCRIPT, heartbeat_scene.MYSQLD_SCRIPT, mode=0o755)
        return note + "; " + self.after_stop_failure(target)

    # -- what a node does about a stop that fails ------------------------------------------------
    def ask_standby(self, node: str) -> str:
        """Ask the node to stand by; what the command answered, on one line."""
        done = self.lab.host(node).run([heartbeat_scene.VIGIL, "standby"], check=False,
                                       timeout=30)
        return " ".join(f"{done.stdout} {done.stderr}".split())[:300]

    def stop_failure_mark(self, node: str) -> int:
        return len(self.pair.daemons[node].output())

    def stop_failure_seen(self, node: str, mark: int) -> bool:
        """vigil's default (`failed_stop block`): the group stays marked as held here."""
        return "group.stop_failed" in self.pair.daemons[node].output()[mark:]

    def stop_failure_words(self, node: str) -> str:
        return "the group blocked on the failed stop (failed_stop block)"

    def after_stop_failure(self, node: str) -> str:
        """The operator repaired the script and restarts vigil (`systemctl restart`:
        SIGTERM, then a start), which must not let the peer start the service while
        it still runs here."""
        self.signal_daemon(node, signal.SIGTERM)
        gone = poll(lambda: not self.daemon_alive(node), DEATH_DEADLINE)
        both = self._watch_both(node, self.timing.deadtime + 2.0)
        if not gone:
            self.signal_daemon(node, signal.SIGKILL)
            poll(lambda: not self.daemon_alive(node), DEATH_DEADLINE)
        self._start_daemon(node)
        if both:
            self.findings.append(f"stop-fails on {node}: MariaDB ran on both nodes for "
                                 f"{both:.1f} s after vigil was restarted")
        return "the script repaired; vigil restarted" + ("" if gone else
                                                         " (SIGTERM ignored: killed)")

    def _watch_both(self, node: str, seconds: float) -> float:
        """For `seconds`: how long MariaDB ran on both nodes at once."""
        other = next(n for n in NODES if n != node)
        end = time.monotonic() + seconds
        both, last = 0.0, time.monotonic()
        while time.monotonic() < end:
            now = time.monotonic()
            up = [n for n in (node, other) if self.lab.host(n).is_up()]
            if len(up) == 2 and all(heartbeat_scene.pids_of(self.lab, n, "mariadbd")
                                    for n in up):
                both += now - last
            last = now
            time.sleep(0.2)
        return both

    def other_fault(self, fault: Fault, target: str) -> str | None:
        raise SetupFailed(f"the {self.name} setup has no fault {fault.kind.value}")

    def _resume(self, node: str) -> None:
        self.signal_daemon(node, signal.SIGCONT)
        self.stopped.discard(node)

    def signal_daemon(self, node: str, signum: int) -> None:
        """Send `signum` to the node's heartbeat daemon (vigil's: one process)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pair.daemons[node].pid, signum)

    def daemon_alive(self, node: str) -> bool:
        return self.pair.daemons[node].alive()

    def after_fault(self, outcome: Outcome) -> list[str]:
        """What the setup does once a fault settled, for the timeline (nothing here)."""
        return []

    def finish(self) -> None:
        """The end of the workload, with the setup still up (nothing to count here)."""

    def rows_lost(self) -> int | None:
        """No rows in this setup: each node has its own datadir."""
        return None

    def final_checks(self, injected: Sequence[Injected]) -> list[str]:
        """What the faults found wrong (stop-fails: the service on both nodes), and the
        client's ARP view: two hosts answering for the VIP outside a split."""
        return list(self.findings) + self.arp_checks(injected)

    def arp_checks(self, injected: Sequence[Injected]) -> list[str]:
        if self.arp is None:
            return []
        if self.arp.error:
            return [self.arp.error]
        samples = list(self.arp.samples)
        found = []
        for start, end in unexcused_spans(dual_windows(samples), injected, self.timing,
                                          DUAL_BOUND):
            hosts = sorted(set().union(*(s.holders for s in samples if start <= s.at <= end)))
            found.append(f"the client saw {' and '.join(hosts)} answer ARP for the VIP for "
                         f"{end - start:.2f} s outside any split fault (bound {DUAL_BOUND:g} s)")
        return found

    def end_notes(self) -> list[str]:
        """The client's ARP view over the campaign, for the campaign's output."""
        if self.arp is None or not self.arp.samples:
            return []
        samples = list(self.arp.samples)
        spans = dual_windows(samples)
        longest = max((end - start for start, end in spans), default=0.0)
        stale = stale_spans(list(self.arp.cache)[:len(samples)], samples)
        longest_stale = max((end - start for start, end in stale), default=0.0)
        return [f"ARP, as the client saw it: {len(samples)} looks, two hosts answered for the "
                f"VIP in {sum(1 for s in samples if len(s.holders) > 1)} (longest "
                f"{longest:.2f} s, {len(spans)} spans); the client's entry named a host that "
                f"did not answer while another did for {longest_stale:.2f} s at most "
                f"({len(stale)} spans)"]
