"""Scene 3: the tutorial's LVS-DR director pair under `vigil heartbeat`.

server5 and server6 carry the tutorial's `ha.cf`, `authkeys`, `haresources.lvs`
(`IPaddr::VIP/24/eth0 ldirectord httpd`) and `ldirectord.cf`, unchanged. The
`ldirectord` resource is vigil's director (the kernel nftables data plane: this
kernel has no IPVS); `httpd` is vigil's `init.d/httpd` (Debian's nginx
under RHEL's name) and serves the director's own page, which is also the
`fallback=127.0.0.1:80 gate` the ldirectord.cf names. rs1 and rs2 run the
tutorial's `realserver.sh` and nginx.

A client keeps requesting through the VIP, one new connection at a time.
Replies come straight from the real servers (counted by source MAC on the
client). nginx stops on rs1: the director quiesces it (weight 0) and no request
fails once it has; nginx stops on rs2 too: the fallback answers. Both directors
run `vigil director standby` first (as the standby unit does at boot): the
standby on server6 runs the same checks and keeps the same table. server5
crashes: server6 takes the VIP and its director becomes active, and keep-alive
connections opened through server5 (idle during the outage, as pooled
connections are) go on answering from the same real servers. Each fault is
timed twice: fault -> detected, and detected -> taken over (vigil's own part);
the client's failed requests are counted before detection, during the takeover
and after it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil.control.client import exchange
from vigil.data import init_script
from vigil.demo.scene import SceneResult
from vigil.demo.timeline import Timeline
from vigil.errors import VigilError
from vigil.kernel.nftables import Nftables
from vigil.lab import Lab
from vigil.lab.host import Host, LabProcess
from vigil.lab.seed import AUTHKEYS_NOTE, demo_file, lab_file, new_secret
from vigil.testing import WaitTimeout, wait_until
from vigil.testing.http import http_exchange

#: `vigil demo director` picks this scene by a word of its title.
TITLE = "LVS-DR director pair: IPaddr ldirectord httpd on server5/server6"
VIP = "198.51.100.100"
REALS = {"198.51.100.1": "rs1", "198.51.100.2": "rs2"}
DIRECTORS = ("server5", "server6")
#: The director's control socket for /etc/ha.d/ldirectord.cf, and its log (ldirectord.cf's).
DIRECTOR_SOCKET = "/run/vigil/director.ldirectord.cf.sock"
DIRECTOR_LOG = "/var/log/ldirectord.log"
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


# -- waiting without sleeping and hoping -------------------------------------------------
def wait(result: SceneResult, condition: Callable[[], Any], timeout: float, problem: str,
         interval: float = 0.02) -> bool:
    """Wait for `condition`; a missed deadline becomes a problem of the scene."""
    try:
        wait_until(condition, timeout, problem, interval=interval)
        return True
    except WaitTimeout:
        result.problems.append(f"{problem}: not within {timeout:g} s")
        return False


def vigil_env() -> dict[str, str]:
    """`vigil` on PATH inside the hosts, as an installed package would be."""
    return {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def vigil(host: Host, *args: str, check: bool = False):
    return host.run(["vigil", *args], env=vigil_env(), check=check, timeout=60)


# -- HTTP from the client -----------------------------------------------------------------
def fetch(client: Host, address: str = VIP, timeout: float = 1.0) -> str:
    """One request on a new connection."""
    sock = client.connect(address, 80, timeout=timeout)
    try:
        return http_exchange(sock, close=True)[0]
    finally:
        sock.close()


@dataclass
class Attempt:
    start: float
    end: float
    answer: str | None
    error: str | None = None


@dataclass
class Load:
    """A client that keeps requesting through the VIP, one new connection at a time."""

    client: Host
    attempts: list[Attempt] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="demo-client", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            start = time.monotonic()
            try:
                answer: str | None = fetch(self.client)
                error = None
            except OSError as exc:
                answer, error = None, type(exc).__name__
            self.attempts.append(Attempt(start, time.monotonic(), answer, error))
            self.stopping.wait(0.05)  # pacing: about 10-15 requests a second

    def between(self, start: float, end: float = float("inf")) -> list[Attempt]:
        return [a for a in list(self.attempts) if start <= a.start < end]

    def last_answer(self) -> str:
        return next((a.answer for a in reversed(list(self.attempts)) if a.answer), "")

    def answered_after(self, moment: float) -> Attempt | None:
        return next((a for a in list(self.attempts) if a.start >= moment and a.answer), None)


def failed(attempts: list[Attempt]) -> int:
    return sum(1 for a in attempts if a.answer is None)


def answers(attempts: list[Attempt]) -> str:
    counts: dict[str, int] = {}
    for attempt in attempts:
        key = attempt.answer.split()[0] if attempt.answer else f"failed ({attempt.error})"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} {n}" for key, n in sorted(counts.items()))


# -- what the hosts say -------------------------------------------------------------------
def director_status(host: Host) -> dict[str, Any] | None:
    """The running director's status over its control socket (None: no director)."""
    if not host.is_up():
        return None
    try:
        answer = exchange(host.path(DIRECTOR_SOCKET), {"command": "status"}, timeout=5)
    except (VigilError, OSError):
        return None
    return answer if answer.get("ok", True) else None


def weights(host: Host) -> dict[str, int]:
    """{rs1: weight, ...} of the VIP's service in the director's kernel table."""
    status = director_status(host)
    if not status:
        return {}
    for service in status.get("table", []):
        if service["key"]["address"] == VIP and service["key"]["port"] == 80:
            return {REALS.get(r["address"], r["address"]): r["weight"] for r in service["reals"]}
    return {}


def holds_vip(lab: Lab, name: str) -> bool:
    return lab.carries(name, VIP, "eth0")


def vip_holders(lab: Lab) -> list[str]:
    return [name for name, host in lab.hosts.items() if host.is_up() and holds_vip(lab, name)]


def mac_of(host: Host) -> str:
    return json.loads(host.run(["ip", "-j", "link", "show", "eth0"]).stdout)[0]["address"]


def read(host: Host, inside: str) -> str:
    try:
        return host.read_file(inside)
    except OSError:
        return ""


def log_time(text: str, *needles: str, after: float = 0.0) -> float | None:
    """Wall-clock time of the first log line (vigil's `YYYY-mm-dd HH:MM:SS,mmm` stamp)
    at or after `after` that contains every needle."""
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if not match or not all(n in line for n in needles):
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if stamp >= after - 0.001:
            return stamp
    return None


def show(timeline: Timeline, text: str, indent: str = "  ") -> None:
    for line in text.rstrip().splitlines():
        timeline.note(indent + line)


# -- the client's view of who answers: an nftables counter per source MAC ----------------
PROBE_TABLE = "demo_replies"


def install_reply_probe(client: Host, macs: dict[str, str]) -> None:
    """Count, at the client's eth0 ingress, replies from VIP:80 by their source MAC."""
    def match(protocol: str, name: str, value: Any) -> dict[str, Any]:
        return {"match": {"op": "==", "left": {"payload": {"protocol": protocol,
                                                           "field": name}},
                          "right": value}}

    table = {"family": "netdev", "table": PROBE_TABLE}
    commands: list[dict[str, Any]] = [
        {"add": {"table": {"family": "netdev", "name": PROBE_TABLE}}},
        {"add": {"chain": {**table, "name": "replies", "type": "filter", "hook": "ingress",
                           "dev": "eth0", "prio": -500, "policy": "accept"}}},
    ]
    for name, mac in macs.items():
        commands.append({"add": {"rule": {**table, "chain": "replies", "comment": name,
                                          "expr": [match("ether", "saddr", mac),
                                                   match("ip", "saddr", VIP),
                                                   match("tcp", "sport", 80),
                                                   {"counter": {"packets": 0, "bytes": 0}}]}}})
    Nftables(client.netns_path).apply(commands)


def reply_counts(client: Host) -> dict[str, int]:
    counts = {}
    for obj in Nftables(client.netns_path).list("table", "netdev", PROBE_TABLE):
        rule = obj.get("rule")
        if rule:
            counter = next(e["counter"] for e in rule["expr"] if "counter" in e)
            counts[rule.get("comment", "?")] = counter["packets"]
    return counts


# -- set-up -------------------------------------------------------------------------------
def configure_director(host: Host, secret: str) -> None:
    """What the sysadmin puts on a director: the tutorial's files, vigil's httpd script."""
    host.write_file("/etc/ha.d/ha.cf", lab_file("ha.cf"))
    host.write_file("/etc/ha.d/authkeys", demo_file("authkeys", secret), mode=0o600)
    host.write_file("/etc/ha.d/haresources", lab_file("haresources.lvs"))
    host.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    host.write_file("/etc/init.d/httpd", init_script("httpd"), mode=0o755)
    host.write_file("/var/www/html/index.html",
                    f"{host.name}: the director's own httpd (fallback page)\n")


def configure_real_server(host: Host) -> None:
    host.write_file("/etc/ha.d/realserver.sh", lab_file("realserver.sh"), mode=0o755)
    host.run(["/etc/ha.d/realserver.sh", "start"])
    host.write_file("/var/www/html/index.html", f"{host.name}\n")
    host.run(["/etc/init.d/nginx", "start"])


def start_heartbeat(host: Host) -> LabProcess:
    """`vigil heartbeat` in the foreground, as its systemd unit runs it (log: its output)."""
    return host.spawn(["vigil", "heartbeat", "-f"], name="vigil-heartbeat", env=vigil_env())


# -- the scene ----------------------------------------------------------------------------
@dataclass
class Fault:
    """One fault's moment: monotonic for the client's records, wall clock for the logs."""

    mono: float
    wall: float

    @classmethod
    def now(cls) -> Fault:
        return cls(time.monotonic(), time.time())

    def mono_of(self, wall: float) -> float:
        return self.mono + (wall - self.wall)


@dataclass
class KeepAlive:
    """An HTTP/1.1 connection from the client, kept open across requests."""

    sock: socket.socket
    server: str

    def ask(self, timeout: float) -> str:
        self.sock.settimeout(timeout)
        return http_exchange(self.sock, close=False)[0]


def run(lab: Lab, timeline: Timeline) -> SceneResult:
    """Play the scene (see the module's docstring)."""
    return DirectorScene(lab, timeline).play()


class DirectorScene:
    def __init__(self, lab: Lab, timeline: Timeline):
        self.lab = lab
        self.timeline = timeline
        self.result = SceneResult("LVS-DR director pair")
        self.load = Load(lab.host("client"))
        self.daemons: dict[str, LabProcess] = {}
        #: Per fault, requests that failed after detection: (during takeover, after it).
        self.failed_after: dict[str, tuple[int, int]] = {}

    def play(self) -> SceneResult:
        self.timeline.scene(TITLE)
        try:
            if self.set_up():
                self.load.start()
                self.steady()
                self.real_server_fault()
                self.director_crash()
        finally:
            self.load.stop()
        if self.failed_after:
            # the claim: none fails once vigil has reacted; the reaction's own cost is in notes
            self.result.requests_failed = sum(after for _, after in self.failed_after.values())
        holders = vip_holders(self.lab)
        self.timeline.event(f"end: the VIP is on eth0 of {', '.join(holders) or 'no host'}"
                            f" (rs1 and rs2 hold it on lo only)")
        self.result.expect(holders == ["server6"],
                           f"at the end the VIP is on eth0 of {holders}, expected server6 alone")
        return self.result

    def wait(self, condition: Callable[[], Any], timeout: float, problem: str) -> bool:
        return wait(self.result, condition, timeout, problem)

    # -- set-up ----------------------------------------------------------------------------
    def set_up(self) -> bool:
        lab, timeline, result = self.lab, self.timeline, self.result
        server5 = lab.host("server5")
        secret = new_secret()
        for name in DIRECTORS:
            configure_director(lab.host(name), secret)
        timeline.event("server5, server6: /etc/ha.d/ha.cf, authkeys, haresources (haresources.lvs),"
                       " ldirectord.cf: the tutorial's files, no line changed but the key")
        timeline.note(AUTHKEYS_NOTE)
        show(timeline, lab_file("haresources.lvs"), "haresources: ")
        timeline.note("ldirectord = vigil's director (built-in agent; kernel nftables data path,"
                      " this kernel has no IPVS); httpd = /etc/init.d/httpd from vigil's init.d/"
                      " (Debian's nginx under RHEL's name)")
        for name in ("rs1", "rs2"):
            configure_real_server(lab.host(name))
        rs1 = lab.host("rs1")
        sysctls = rs1.run(["sysctl", "-n", "net.ipv4.conf.all.arp_ignore",
                           "net.ipv4.conf.all.arp_announce"]).stdout.split()
        on_lo = any(a.startswith(VIP + "/32") for a in lab.addresses("rs1", "lo"))
        timeline.event(f"rs1, rs2: /etc/ha.d/realserver.sh start (the tutorial's): VIP on lo"
                       f" {'yes' if on_lo else 'NO'}, arp_ignore={sysctls[0]}"
                       f" arp_announce={sysctls[1]}; nginx serves a page naming its server")
        result.expect(on_lo and sysctls == ["1", "2"], "realserver.sh did not set up rs1")

        for name in DIRECTORS:
            vigil(lab.host(name), "director", "standby", check=True)
        timeline.event("server5, server6: vigil director standby (what the"
                       " vigil-director-standby@ldirectord.cf unit does at boot): both run the"
                       " checks and keep the table; the ldirectord resource only makes one active")
        self.daemons = {name: start_heartbeat(lab.host(name)) for name in DIRECTORS}
        started = time.monotonic()
        timeline.event("vigil heartbeat started on server5 and server6 (keepalive 2, deadtime 30,"
                       " initdead 60, bcast eth0, auto_failback on)")
        ready = self.wait(lambda: holds_vip(lab, "server5")
                          and weights(server5) == {"rs1": 1, "rs2": 1}
                          and "nftables.settled" in read(server5, DIRECTOR_LOG)
                          and server5.run(["/etc/init.d/httpd", "status"],
                                          check=False).returncode == 0
                          and (director_status(lab.host("server6")) or {}).get("role")
                          == "standby" and weights(lab.host("server6")) == {"rs1": 1, "rs2": 1}
                          and "nftables.settled" in read(lab.host("server6"), DIRECTOR_LOG),
                          60, "server5 running VIP, director (rs1, rs2 up) and httpd;"
                          " server6's director a warm standby with the same table")
        if not ready:
            for name, process in self.daemons.items():
                result.notes[f"{name} log"] = process.output()[-1500:]
            return False
        timeline.event(f"server5 runs the group: VIP on eth0, director with rs1 and rs2 at"
                       f" weight 1, httpd ({time.monotonic() - started:.1f} s after start)")
        status = director_status(server5) or {}
        timeline.note(f"backend {status.get('backend', '?')}; vigil lvs list -n on server5:")
        show(timeline, vigil(server5, "lvs", "list", "-n").stdout, "    ")
        server6 = lab.host("server6")
        timeline.event("server6 (no VIP): " + vigil(server6, "director", "status").stdout
                       .splitlines()[0] + "; the same table, forwarding only what is"
                       " addressed to server6 (fib daddr type local)")
        return True

    # -- before the faults -------------------------------------------------------------------
    def steady(self) -> None:
        """Replies bypass the director; httpd on the director answers on its own address."""
        lab, timeline, result, load = self.lab, self.timeline, self.result, self.load
        client, server5 = lab.host("client"), lab.host("server5")
        macs = {name: mac_of(lab.host(name)) for name in ("rs1", "rs2", "server5", "server6")}
        install_reply_probe(client, macs)
        mark = time.monotonic()
        self.wait(lambda: len({a.answer for a in load.between(mark) if a.answer}) >= 2
                  and len(load.between(mark)) >= 10, 20,
                  "the client's requests answered by rs1 and rs2")
        counts = reply_counts(client)
        timeline.event(f"client through the VIP: {answers(load.between(mark))}; packets from"
                       f" VIP:80 at the client by source MAC: rs1 {counts.get('rs1', 0)},"
                       f" rs2 {counts.get('rs2', 0)}, server5 {counts.get('server5', 0)},"
                       f" server6 {counts.get('server6', 0)}")
        direct = counts.get("rs1", 0) > 0 and counts.get("rs2", 0) > 0
        result.expect(direct and counts.get("server5", 0) == 0 and counts.get("server6", 0) == 0,
                      f"replies did not come straight from the real servers: {counts}")
        timeline.note("direct routing: the director only passes the client's packets on;"
                      " the real servers answer the client themselves")
        try:
            own = fetch(client, server5.address())
        except OSError as exc:
            own = f"no answer ({exc})"
        timeline.event(f"client -> server5's own address {server5.address()}:80: {own!r}")
        timeline.note("httpd and the director share port 80: the kernel data path takes the"
                      " VIP's packets at eth0's ingress and never binds the port")
        result.expect(own.startswith("server5"), f"httpd on server5 did not answer: {own}")

    def tally(self, fault: str, before: list[Attempt], during: list[Attempt],
              after: list[Attempt]) -> None:
        """The client's requests around one fault: failures before detection, during
        vigil's reaction (detection -> takeover), and after it (the claim: none)."""
        self.result.notes[fault] = (
            f"requests failed: {failed(before)} of {len(before)} before detection,"
            f" {failed(during)} of {len(during)} during takeover,"
            f" {failed(after)} of {len(after)} after")
        self.failed_after[fault] = (failed(during), failed(after))
        self.result.expect(failed(after) == 0,
                           f"{fault}: {failed(after)} requests failed after the takeover")

    # -- fault 1: a real server's service stops ----------------------------------------------
    def real_server_fault(self) -> None:
        """nginx stops on rs1: quiesced (weight 0); no request fails once detected."""
        lab, timeline, result, load = self.lab, self.timeline, self.result, self.load
        server5, rs1, rs2 = lab.host("server5"), lab.host("rs1"), lab.host("rs2")
        fault = Fault.now()
        timeline.mark_fault("nginx stopped on rs1 (/etc/init.d/nginx stop)")
        rs1.run(["/etc/init.d/nginx", "stop"])
        quiesced = self.wait(lambda: weights(server5).get("rs1") == 0, 20,
                             "the director quiescing rs1")
        log = read(server5, DIRECTOR_LOG)
        down = log_time(log, "real.down", "198.51.100.1", after=fault.wall)
        applied = log_time(log, "table.applied", after=down) if down else None
        if quiesced and down and applied:
            result.timings["rs1 detected"] = down - fault.wall
            result.timings["rs1 takeover"] = applied - down
            timeline.event(f"director on server5: rs1 down (negotiate check) at"
                           f" fault+{down - fault.wall:.3f}s; weight 0 in the kernel table"
                           f" {(applied - down) * 1000:.0f} ms later (vigil lvs list -n):")
            show(timeline, vigil(server5, "lvs", "list", "-n").stdout, "    ")
            detected, quiet = fault.mono_of(down), fault.mono_of(applied)
            until = time.monotonic() + 3.0
            self.wait(lambda: time.monotonic() >= until and len(load.between(quiet)) >= 10,
                      20, "requests after rs1 was quiesced")
            before = load.between(fault.mono, detected)
            during, after = load.between(detected, quiet), load.between(quiet)
            timeline.event(f"client requests: before detection {answers(before) or 'none'};"
                           f" while the table changed {answers(during) or 'none'};"
                           f" after {answers(after)}")
            self.tally("rs1 stopped", before, during, after)
            result.expect(all(a.answer and a.answer.startswith("rs2") for a in after),
                          "after rs1 was quiesced, not every request went to rs2")
        elif quiesced:
            result.problems.append("the director's log does not say when rs1 went down")

        # ldirectord.cf's fallback: with no real server left, the director's own httpd.
        mark = time.monotonic()
        rs2.run(["/etc/init.d/nginx", "stop"])
        timeline.event("nginx stopped on rs2 as well: no real server left")
        if self.wait(lambda: load.last_answer().startswith("server5"), 20,
                     "the fallback page answering"):
            first = next(a for a in load.between(mark) if a.answer
                         and a.answer.startswith("server5"))
            timeline.event(f"fallback=127.0.0.1:80 gate: the client gets {first.answer!r},"
                           f" {first.end - mark:.3f} s after rs2 stopped"
                           f" ({failed(load.between(mark, first.start))} requests failed"
                           f" meanwhile)")
        for host in (rs1, rs2):
            host.run(["/etc/init.d/nginx", "start"])
        if self.wait(lambda: weights(server5) == {"rs1": 1, "rs2": 1}, 20,
                     "rs1 and rs2 back in the director's table"):
            timeline.event("nginx started again on rs1 and rs2: both back at weight 1")
        mark = time.monotonic()
        self.wait(lambda: {"rs1", "rs2"} <= {(a.answer or "").split()[0] or "-"
                                             for a in load.between(mark) if a.answer},
                  20, "the client reaching rs1 and rs2 again")

    # -- fault 2: the active director crashes ----------------------------------------------
    def open_keepalives(self) -> dict[str, KeepAlive]:
        """One keep-alive connection through server5 to each real server."""
        client = self.lab.host("client")
        kept: dict[str, KeepAlive] = {}
        for _ in range(30):
            sock = client.connect(VIP, 80, timeout=5.0)
            try:
                server = http_exchange(sock, close=False)[0].split()[0]
            except OSError:
                sock.close()
                continue
            if server in kept or server not in ("rs1", "rs2"):
                sock.close()
                continue
            kept[server] = KeepAlive(sock, server)
            if len(kept) == 2:
                break
        return kept

    def director_crash(self) -> None:
        """server5 crashes: server6 takes the VIP and the director role; keep-alive
        connections opened through server5 carry on to the same real servers."""
        lab, timeline, result = self.lab, self.timeline, self.result
        kept = self.open_keepalives()
        ports = ", ".join(f"port {k.sock.getsockname()[1]} -> {k.server}" for k in kept.values())
        timeline.event(f"client opens keep-alive connections through server5: {ports}")
        result.expect(len(kept) == 2, f"keep-alive connections to rs1 and rs2: only {list(kept)}")
        try:
            fault = Fault.now()
            timeline.mark_fault("server5 crashes (power off: cables pulled, every process killed)")
            lab.crash("server5")
            self.after_crash(fault, kept)
        finally:
            for connection in kept.values():
                connection.sock.close()

    def after_crash(self, fault: Fault, kept: dict[str, KeepAlive]) -> None:
        lab, timeline, result, load = self.lab, self.timeline, self.result, self.load
        server6 = lab.host("server6")
        heartbeat = self.daemons["server6"]
        if not self.wait(lambda: log_time(heartbeat.output(), "peer.dead", "server5",
                                          after=fault.wall), 60,
                         "server6 declaring server5 dead"):
            return
        dead = log_time(heartbeat.output(), "peer.dead", "server5", after=fault.wall)
        assert dead is not None
        detected = fault.mono_of(dead)
        result.timings["crash detected"] = dead - fault.wall
        timeline.event(f"server6: server5 dead at fault+{dead - fault.wall:.3f}s"
                       f" (deadtime 30 s after its last heartbeat): taking over the group")
        # vigil's own part: from "dead" to the VIP answering through server6.
        answered_at = self.first_answer(deadline=detected + 30)
        if answered_at is None:
            result.problems.append("the VIP did not answer through server6 within 30 s")
        else:
            result.timings["crash takeover"] = answered_at - detected
            timeline.event(f"the VIP answers again, through server6:"
                           f" {answered_at - detected:.3f} s after detection")
        self.ask_keepalives(kept)
        if self.wait(lambda: log_time(heartbeat.output(), "resource.start", "resource=httpd",
                                      after=dead), 30, "server6 starting httpd"):
            output, director_log = heartbeat.output(), read(server6, DIRECTOR_LOG)
            moments = {
                "IPaddr started (VIP on eth0, gratuitous ARP)":
                    log_time(output, "resource.start", f"resource=IPaddr::{VIP}", after=dead),
                "director's data path opened (activated: the standby's gate dropped)":
                    log_time(director_log, "nftables.commit", after=dead),
                "ldirectord (the warm standby activated) done":
                    log_time(output, "resource.start", "resource=ldirectord", after=dead),
                "httpd started": log_time(output, "resource.start", "resource=httpd", after=dead),
            }
            for what, at in sorted(moments.items(), key=lambda item: item[1] or 0.0):
                if at is not None:
                    timeline.note(f"server6 at fault+{at - fault.wall:.3f}s: {what}")
        until = time.monotonic() + 2.0
        self.wait(lambda: time.monotonic() >= until, 10, "requests after takeover")
        first = load.answered_after(detected)
        back = first.start if first else float("inf")
        before = load.between(fault.mono, detected)
        during = load.between(detected, back)
        after = load.between(back)
        timeline.event(f"client requests: before detection {answers(before) or 'none'};"
                       f" during takeover {answers(during) or 'none'};"
                       f" after {answers(after) or 'none'}")
        self.tally("server5 crash", before, during, after)
        if failed(during):
            timeline.note("during takeover: sent to server5's MAC before the gratuitous ARP"
                          " (server6's warm table forwards the VIP's packets as soon as the"
                          " VIP is on its eth0)")
        timeline.note("vigil lvs list -n on server6:")
        show(timeline, vigil(server6, "lvs", "list", "-n").stdout, "    ")

    def first_answer(self, deadline: float) -> float | None:
        """Probe the VIP with short-lived requests until one is answered; when it was (the
        client's load, 1 s per request, is too coarse to time this). A SYN sent to the
        dead director's MAC before the gratuitous ARP is lost: the probe gives a connect
        20 ms, then the next one goes to the new holder."""
        client = self.lab.host("client")
        pause = threading.Event()
        while time.monotonic() < deadline:
            try:
                sock = client.connect(VIP, 80, timeout=0.02)
                try:
                    sock.settimeout(1.0)
                    http_exchange(sock, close=True)
                finally:
                    sock.close()
                return time.monotonic()
            except OSError:
                pause.wait(0.005)  # a refused connection returns at once: pace the probe
        return None

    def ask_keepalives(self, kept: dict[str, KeepAlive]) -> None:
        """The connections opened through server5 ask again: the same server answers."""
        timeline, result = self.timeline, self.result
        for connection in kept.values():
            seen: list[str] = []
            asked = time.monotonic()
            first = 0.0
            try:
                for _ in range(5):
                    seen.append(connection.ask(timeout=15.0).split()[0])
                    first = first or time.monotonic() - asked
            except OSError as exc:
                seen.append(f"failed ({type(exc).__name__})")
            same = seen == [connection.server] * 5
            timeline.event(f"keep-alive connection to {connection.server} (opened through"
                           f" server5, idle during the outage) asks 5 times: {', '.join(seen)}"
                           f" (first answer after {first:.3f} s)")
            if first > 0.5:
                timeline.note("(packets the client sent to server5's MAC before the gratuitous"
                              " ARP were lost; TCP sends them again)")
            result.expect(same, f"the keep-alive connection to {connection.server} did not"
                          f" survive the takeover: {seen}")
        if kept:
            result.notes["keep-alive"] = ("connections opened through server5 answered by the"
                                          " same real servers after takeover")
