"""The director setup under faults: the tutorial's LVS-DR director pair, and its hands.

The tutorial's third setup (`haresources.lvs`: `IPaddr::VIP ldirectord` on
server5, the tutorial's ldirectord.cf, rs1 and rs2 with nginx and the VIP on
lo) with the campaign's timings and two heartbeat media. The client asks
`http://VIP/` through the directors; a real server answers it directly (DR).

Its "service" fault is a real server's nginx killed (kill -9): the active
director's check must set that server's weight to 0 within DETECT_BOUND, no
request may fail once that has happened, and when nginx is back its weight
must be restored. What failed in between is reported as the fault's outage.
"""

from __future__ import annotations

import bisect
import contextlib
import http.client
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

from vigil.demo import heartbeat_scene
from vigil.lab import Lab
from vigil.testing import director_pair
from vigil.torture.checks import Injected, Query
from vigil.torture.heartbeat_setup import HeartbeatSetup, campaign_ha_cf
from vigil.torture.schedule import Fault, FaultKind

REAL_SERVERS = ("rs1", "rs2")
#: a killed nginx must be at weight 0 on the active director within this long
#: (the tutorial's checkinterval 1 s and checktimeout 3 s, and a loaded machine)
DETECT_BOUND = 8.0
#: requests already on their way to the dead server when its weight went to 0
IN_FLIGHT_GRACE = 1.0
#: a restarted nginx must be back at its weight within this long
RESTORE_BOUND = 10.0
#: how long a killed nginx stays down after its weight went to 0
DOWN_AFTER_DETECTION = 2.0


@dataclass(frozen=True)
class WebAnswer:
    """One request through the VIP: which real server answered (None: it failed)."""

    at: float
    done: float
    real: str | None


@dataclass(eq=False)
class WebClient(heartbeat_scene.Client):
    """Asks `http://VIP/` from the client host every `interval`, one connection each
    (the demo client's pacing: a request stuck in a timeout never hides the next)."""

    interval: float = 0.1

    def query(self) -> None:
        at = time.monotonic()
        real = None
        with self.lab.host("client").entered():
            connection = http.client.HTTPConnection(self.vip, 80, timeout=2.0)
            try:
                connection.request("GET", "/")
                answer = connection.getresponse()
                body = answer.read(64).decode(errors="replace").strip()
                if answer.status == 200 and body in REAL_SERVERS:
                    real = body
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
        self.answers.append(WebAnswer(at, time.monotonic(), real))  # type: ignore[arg-type]


class DirectorSetup(HeartbeatSetup):
    """The tutorial's director pair under vigil heartbeat, with a web client."""

    name = "director"

    def __init__(self, lab: Lab):
        super().__init__(lab)
        self.pair.vip = director_pair.VIP
        self.web = WebClient(lab, director_pair.VIP)
        #: what the real-server faults found wrong, for the end
        self.findings: list[str] = []

    def configure(self) -> None:
        director_pair.configure(self.lab)
        for node in heartbeat_scene.NODES:
            self.lab.host(node).write_file("/etc/ha.d/ha.cf", campaign_ha_cf())

    def start(self) -> None:
        self.configure()
        for node in heartbeat_scene.NODES:
            self._start_daemon(node)
        self.observer.start()
        self.watch_arp()
        self.web.start()

    def stop(self) -> None:
        super().stop()  # its reading client never started here
        if self.web.ident is not None:
            self.web.stop()

    def queries(self) -> list[Query]:
        """Each request, credited to the director that carried the VIP when it ended."""
        samples = list(self.observer.samples)
        moments = [s.at for s in samples]
        found = []
        for answer in list(self.web.answers):
            index = bisect.bisect_right(moments, answer.done) - 1
            holders = samples[index].holders if index >= 0 else frozenset()
            holder = next(iter(holders)) if len(holders) == 1 else None
            found.append(Query(answer.at, answer.done, answer.real is not None,
                               holder if answer.real is not None else None))
        return found

    # -- faults --------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Injected:
        if fault.kind is not FaultKind.KILL_SERVICE:
            return super().inject(fault)
        before = self.holder()
        real = REAL_SERVERS[fault.index % len(REAL_SERVERS)]
        injected = time.monotonic()
        note = self._kill_real_server(real, before)
        return Injected(fault, real, injected, time.monotonic(), before, note)

    def _kill_real_server(self, real: str, director: str | None) -> str:
        """kill -9 nginx on `real`; its weight must go to 0, requests must stop failing,
        and once nginx is back its weight must return."""
        address = f"{self.lab.host(real).address('lan')}:80"
        killed = time.monotonic()
        for pid in heartbeat_scene.pids_of(self.lab, real, "nginx"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        detected = self._wait_weight(director, address, 0, DETECT_BOUND)
        if detected is None:
            self.findings.append(f"{real}'s nginx killed: its weight was not 0 on {director} "
                                 f"within {DETECT_BOUND:g} s")
            note = f"weight of {real} not 0 within {DETECT_BOUND:g} s"
            down_until = time.monotonic()
        else:
            time.sleep(DOWN_AFTER_DETECTION)
            down_until = time.monotonic()
            failed = [a for a in list(self.web.answers)
                      if detected + IN_FLIGHT_GRACE <= a.at and a.done <= down_until
                      and a.real is None]
            if failed:
                self.findings.append(
                    f"{real}'s nginx killed: {len(failed)} requests failed after its weight "
                    f"went to 0 on {director} (a request sent to a server whose check failed)")
            note = f"{real} at weight 0 {detected - killed:.2f} s after the kill"
        self.lab.host(real).run(["/etc/init.d/nginx", "start"], check=False)
        if self._wait_weight(director, address, 1, RESTORE_BOUND) is None:
            self.findings.append(f"{real}'s nginx restarted: its weight was not back on "
                                 f"{director} within {RESTORE_BOUND:g} s")
        return note

    def _wait_weight(self, director: str | None, address: str, weight: int,
                     bound: float) -> float | None:
        """When the active director's table first showed `weight` for `address`."""
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if director is not None and self._weight(director, address) == weight:
                return time.monotonic()
            time.sleep(0.1)
        return None

    def _weight(self, director: str, address: str) -> int | None:
        done = director_pair.vigil(self.lab.host(director), "lvs", "list", "-n", check=False)
        for line in done.stdout.splitlines():
            words = line.split()
            if len(words) >= 4 and words[0] == "->" and words[1] == address:
                with contextlib.suppress(ValueError):
                    return int(words[3])
        return None

    def final_checks(self, injected: Sequence[Injected]) -> list[str]:
        return list(self.findings) + self.arp_checks(injected)
