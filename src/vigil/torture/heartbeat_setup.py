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
from dataclasses import dataclass, field

from vigil.demo import heartbeat_scene
from vigil.demo.heartbeat_scene import poll
from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.errors import VigilError
from vigil.lab import Lab
from vigil.lab.seed import lab_file
from vigil.torture.checks import Injected, Query, Sample
from vigil.torture.schedule import Fault, FaultKind, Role, Timing

NODES = heartbeat_scene.NODES
HOME = "server5"
#: The campaign's timings (the tutorial's are keepalive 2, deadtime 30: a fault a minute).
TIMING = Timing(keepalive=0.5, deadtime=3.0)
#: How long a kill -9'd daemon may take to be gone before it is restarted anyway.
DEATH_DEADLINE = 10.0
#: How often the observer reads both nodes' interfaces.
SAMPLE_EVERY = 0.1


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
class Observer(threading.Thread):
    """Reads which nodes carry the VIP on their interfaces, every SAMPLE_EVERY s."""

    pair: heartbeat_scene.Pair
    samples: list[Sample] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, name="torture-observer", daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            at = time.monotonic()
            try:
                holders = frozenset(self.pair.holders())
            except Exception:  # a node between power-off and boot: no sample this time
                holders = None
            if holders is not None:
                self.samples.append(Sample(at, holders))
            self.stopping.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self.stopping.set()
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
        self.observer = Observer(self.pair)
        self.stopped: set[str] = set()

    # -- life ----------------------------------------------------------------------------
    def start(self) -> None:
        """Configure both nodes, start their daemons, then watch and serve."""
        self.configure()
        for node in NODES:
            self._start_daemon(node)
        self.ready()
        self.observer.start()
        self.client.start()

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
        elif kind is FaultKind.STALL:
            self.stopped.add(target)
            self.signal_daemon(target, signal.SIGSTOP)
            time.sleep(hold)
            self._resume(target)
        else:
            self.other_fault(fault, target)
        return Injected(fault, target, injected, time.monotonic(), before, note)

    def other_fault(self, fault: Fault, target: str) -> None:
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

    def finish(self) -> None:
        """The end of the workload, with the setup still up (nothing to count here)."""

    def rows_lost(self) -> int | None:
        """No rows in this setup: each node has its own datadir."""
        return None

    def final_checks(self) -> list[str]:
        """Setup-specific end checks (none beyond the campaign's own here)."""
        return []
