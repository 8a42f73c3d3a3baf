"""The tutorial's LVS-DR director pair under `vigil heartbeat`, timed through a crash.

server5 and server6 run `vigil heartbeat` with `IPaddr::VIP/24/eth0 ldirectord`
(the tutorial's ldirectord.cf, heartbeat timings shortened), rs1 and rs2 the
tutorial's real-server set-up and nginx. With `warm`, each director runs
`vigil director standby` first, as the `vigil-director-standby@` unit does at
boot; without, the `ldirectord` resource starts a director from cold. server5
crashes; the measure is from server6's `peer.dead` line to the client's first
HTTP answer through the VIP. The lab tests and bench/failover share this.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vigil.lab import Lab
from vigil.lab.host import Host, LabProcess
from vigil.lab.seed import lab_file
from vigil.testing.wait import wait_until

VIP = "198.51.100.100"


@dataclass(frozen=True)
class PairLayout:
    """Which two lab hosts are the pair, and the heartbeat media between them."""

    active: str
    standby: str
    media: tuple[str, ...]

    @property
    def directors(self) -> tuple[str, str]:
        return self.active, self.standby

    def ha_cf(self) -> str:
        media = "".join(f"{medium}\n" for medium in self.media)
        return (f"keepalive 100ms\ndeadtime 1\nwarntime 500ms\ninitdead 3\nudpport 694\n"
                f"{media}auto_failback off\nnode {self.active}.example.com\n"
                f"node {self.standby}.example.com\n")

    def haresources(self) -> str:
        return f"{self.active}.example.com IPaddr::{VIP}/24/eth0 ldirectord\n"


#: The tutorial's directors, heartbeat on their second link.
SEED_PAIR = PairLayout("server5", "server6", ("ucast eth1 203.0.113.5", "ucast eth1 203.0.113.6"))
DIRECTORS = SEED_PAIR.directors
DIRECTOR_LOG = "/var/log/ldirectord.log"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def vigil_env() -> dict[str, str]:
    """`vigil` on PATH inside the hosts, as an installed package would be."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"}


def vigil(host: Host, *args: str, check: bool = True):
    return host.run([sys.executable, "-m", "vigil", *args], env=vigil_env(), check=check,
                    timeout=60)


def log_time(text: str, *needles: str) -> float | None:
    """Wall-clock time of the first log line that contains every needle."""
    for line in text.splitlines():
        match = _STAMP.match(line)
        if match and all(n in line for n in needles):
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def http_get(client: Host, timeout: float, address: str = VIP, port: int = 80) -> str:
    """GET / through the VIP (or `address`) on a new connection: the body (raises OSError).

    A short `timeout` bounds the connect (a dead path shows at once); the answer may
    take at least half a second.
    """
    sock = client.connect(address, port, timeout=timeout)
    try:
        sock.settimeout(max(timeout, 0.5))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: www\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"answer {head[:40]!r}")
    return body.decode().strip()


@dataclass
class Prober:
    """The client asking the VIP back to back (short connect timeout), from the crash on:
    the wall-clock time of each answer."""

    client: Host
    answers: list[tuple[float, str]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="vip-prober", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                body = http_get(self.client, timeout=0.02)
            except OSError:
                self.stopping.wait(0.002)  # a refused connection returns at once
                continue
            self.answers.append((time.time(), body))

    def first_after(self, moment: float) -> float | None:
        return next((at for at, _ in list(self.answers) if at >= moment), None)


@dataclass
class Takeover:
    """One crash of the active director: when server6 declared it dead, when the client
    was served again, and what the directors' logs say."""

    warm: bool
    crashed: float | None = None
    detected: float | None = None
    served: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.detected is None or self.served is None:
            return None
        return self.served - self.detected

    @property
    def recovery(self) -> float | None:
        """From the crash to the first answer (detection included)."""
        if self.crashed is None or self.served is None:
            return None
        return self.served - self.crashed


def configure_real_servers(lab: Lab) -> None:
    """rs1 and rs2: the tutorial's realserver.sh and nginx answering its own name."""
    for name in ("rs1", "rs2"):
        host = lab.host(name)
        host.write_file("/etc/ha.d/realserver.sh", lab_file("realserver.sh"), mode=0o755)
        host.run(["/etc/ha.d/realserver.sh", "start"])
        host.write_file("/var/www/html/index.html", f"{name}\n")
        host.run(["/etc/init.d/nginx", "start"])


def configure(lab: Lab, layout: PairLayout = SEED_PAIR) -> None:
    configure_real_servers(lab)
    for name in layout.directors:
        host = lab.host(name)
        host.write_file("/etc/ha.d/ha.cf", layout.ha_cf())
        host.write_file("/etc/ha.d/authkeys", "auth 1\n1 sha1 vigil-lab-director-pair\n",
                        mode=0o600)
        host.write_file("/etc/ha.d/haresources", layout.haresources())
        host.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))


def director_settled(host: Host) -> bool:
    try:
        return "nftables.settled" in host.read_file(DIRECTOR_LOG)
    except OSError:
        return False


def start_pair(lab: Lab, warm: bool, timeout: float = 60.0,
               layout: PairLayout = SEED_PAIR) -> dict[str, LabProcess]:
    """Both heartbeats up, the active director (server5) serving the VIP, the standby
    (server6) hearing it (and, warm, the standby settled with the same table)."""
    configure(lab, layout)
    if warm:
        for name in layout.directors:
            vigil(lab.host(name), "director", "standby")
    daemons = {name: lab.host(name).spawn([sys.executable, "-m", "vigil", "heartbeat", "-f"],
                                          name="vigil-heartbeat", env=vigil_env())
               for name in layout.directors}
    client, active, standby = (lab.host("client"), lab.host(layout.active),
                               lab.host(layout.standby))

    def served() -> bool:
        try:
            return http_get(client, timeout=1.0) in ("rs1", "rs2")
        except OSError:
            return False

    wait_until(lambda: served() and director_settled(active), timeout,
               lambda: f"{active.name} serving the VIP\n"
               + daemons[active.name].output()[-1500:])
    wait_until(lambda: "peer.alive" in daemons[standby.name].output(), timeout,
               f"{standby.name} hearing {active.name}")
    if warm:
        wait_until(lambda: director_settled(standby), timeout,
                   f"{standby.name}'s standby settled")
    return daemons


def crash_and_time(lab: Lab, daemons: dict[str, LabProcess], warm: bool,
                   timeout: float = 30.0) -> Takeover:
    """Crash server5; time server6's takeover from detection to the first answer."""
    result = Takeover(warm)
    prober = Prober(lab.host("client"))
    prober.start()  # before the crash: pulling a host's plug takes a second or two
    crashed = result.crashed = time.time()
    try:
        lab.crash("server5")
        output = daemons["server6"]
        wait_until(lambda: log_time(output.output(), "peer.dead", "server5") is not None,
                   timeout, "server6 declaring server5 dead")
        result.detected = log_time(output.output(), "peer.dead", "server5")
        assert result.detected is not None
        detected = result.detected
        wait_until(lambda: prober.first_after(detected) is not None, timeout,
                   "an answer through server6")
        result.served = prober.first_after(detected)
    finally:
        prober.stop()
    # pulling the cables takes a moment after the call: answers later than that, but
    # before detection, would mean server5 was not dead
    early = [at for at, _ in prober.answers if crashed + 0.1 <= at < detected]
    if early:
        result.notes.append(f"{len(early)} answers between the crash and detection")
    return result


def measure(lab: Lab, warm: bool) -> Takeover:
    """One run in a fresh seed lab: bring the pair up, crash server5, time it."""
    daemons = start_pair(lab, warm)
    return crash_and_time(lab, daemons, warm)
