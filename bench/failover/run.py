"""Failover benchmark: vigil heartbeat vs Debian heartbeat 3.0.6 vs keepalived 2.2.7.

In the pair lab (server5, server6, client, gateway), each tool runs the same
VIP group with the same timings, interleaved run by run:

* host-failure: the active host (server5) is powered off (links cut, every
  process killed) -> time until the client's first successful TCP exchange
  with the VIP answered by server6;
* partition-heal: every frame between the directors is dropped until both
  hold the VIP, then the partition heals -> the client's longest outage
  after the heal, and who holds the VIP at the end;
* soak: both CPUs saturated by busy loops for a while at each tool's
  tightest setting -> spurious failovers (the VIP appearing on server6).
* director-crash: the tutorial's LVS-DR director pair in the seed lab
  (`IPaddr ldirectord` under vigil heartbeat, the tutorial's ldirectord.cf,
  rs1 and rs2 behind it); the active director crashes -> time from server6's
  "peer dead" line to the client's first HTTP answer through the VIP, with the
  director started cold by the resource and with a warm standby, run by run.
* cluster-crash: the same LVS group in the three-node lab
  (`vigil.testing.pacemaker_cluster`: the seed's hosts and server7), run by
  vigil heartbeat on the server5/server6 pair and by a real Corosync 3 +
  Pacemaker cluster on server5/server6/server7 configured by `vigil export
  pacemaker` (same 1 s dead time: deadtime 1, token 1000 ms); the node
  holding the group crashes -> time from the crash to the client's first HTTP
  answer through the VIP (detection included), run by run. vigil-etcd runs the
  same group with `cluster_backend etcd` on the three nodes, each an etcd member
  (`vigil.testing.etcd_cluster.EtcdDirectors`: lease TTL 3 s, margin 1 s).

Run as root, with your lab prefix:
  VIGIL_LAB_PREFIX=vh VIGIL_LAB_ROOT=/tmp/vigil-lab-vh .venv/bin/python bench/failover/run.py \\
      --runs 10 --scenarios host-failure,partition-heal --settings tight
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import socket
import statistics
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from vigil.lab import Lab, LabProcess, pair_topology, seed_topology
from vigil.testing import director_pair, etcd_cluster, pacemaker_cluster, wait_until
from vigil.testing.responder import NAME_RESPONDER

VIP = "198.51.100.100"
VIGIL = str(Path(sys.executable).parent / "vigil")
HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
NODES = ("server5", "server6")

#: timings per setting: keepalive, deadtime, warntime, initdead (s); VRRP advert (s)
SETTINGS = {
    "tight": {"keepalive": "10ms", "deadtime": "30ms", "warntime": "20ms", "initdead": "2",
              "advert": "0.01"},
    "seed": {"keepalive": "2", "deadtime": "30", "warntime": "10", "initdead": "60",
             "advert": "2"},
    # each tool's tightest setting for the loaded soak (the targets)
    "soak-vigil": {"keepalive": "10ms", "deadtime": "50ms", "warntime": "30ms",
                   "initdead": "2", "advert": "0.01"},
    "soak-heartbeat": {"keepalive": "10ms", "deadtime": "30ms", "warntime": "20ms",
                       "initdead": "2", "advert": "0.01"},
    "soak-keepalived": {"keepalive": "10ms", "deadtime": "30ms", "warntime": "20ms",
                        "initdead": "2", "advert": "0.01"},
}

HACF = """logfile /var/log/ha-log
keepalive {keepalive}
deadtime {deadtime}
warntime {warntime}
initdead {initdead}
udpport 694
bcast eth0
ucast eth1 203.0.113.5
ucast eth1 203.0.113.6
auto_failback on
node server5.example.com
node server6.example.com
"""
HARESOURCES = f"server5.example.com IPaddr::{VIP}/24/eth0\n"
AUTHKEYS = "auth 1\n1 sha1 bench-secret\n"
#: vigil.cf for `--vigil-cf no-probe` (heartbeat's IPaddr and keepalived do not probe
#: for duplicates before adding the VIP); `default` runs vigil as shipped
VIGIL_CFS = {"default": "", "no-probe": "duplicate_probe off\n"}
VIGIL_CF = VIGIL_CFS["default"]
KEEPALIVED = """global_defs {{
    router_id {name}
    vrrp_version 3
}}
vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {priority}
    advert_int {advert}
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""
RESPONDER = NAME_RESPONDER
HOG = "while True: pass"


# -- the client's view ---------------------------------------------------------------------

@dataclass
class Probe:
    """Connects to the VIP from the client as fast as it can; records who answered when."""

    lab: Lab
    timeout: float = 0.02
    samples: list[tuple[float, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with self.lab.host("client").entered():
            while not self._stop.is_set():
                answer = None
                sock = socket.socket()
                # close with a reset: no TIME_WAIT on either side (thousands of probes;
                # a dying lab host's namespace would wait for them)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.settimeout(self.timeout)
                try:
                    sock.connect((VIP, 80))
                    answer = sock.recv(32).decode().strip() or None
                except OSError:
                    pass
                finally:
                    sock.close()
                self.samples.append((time.monotonic(), answer))
                if answer is None:
                    time.sleep(0.001)

    def first(self, name: str, after: float) -> float | None:
        for when, answer in list(self.samples):
            if when >= after and answer == name:
                return when
        return None

    def longest_outage(self, start: float, end: float) -> float:
        good = [t for t, a in list(self.samples) if a is not None and start <= t <= end]
        if not good:
            return end - start
        points = [start, *good, end]
        return max(b - a for a, b in itertools.pairwise(points))


# -- the tools -----------------------------------------------------------------------------------

class Tool:
    name = ""
    stabilize = 1.0

    def __init__(self, lab: Lab, setting: dict[str, str]):
        self.lab = lab
        self.setting = setting
        self.processes: dict[str, LabProcess] = {}

    def configure(self, host: str) -> None:
        raise NotImplementedError

    def start(self, host: str) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        """The standby node is up and sees the active one."""
        return True


class Vigil(Tool):
    name = "vigil"
    #: which group driver runs the VIP: "agents" (the real IPaddr) or "test"
    driver = "agents"
    #: the vigil.cf it runs with (see VIGIL_CFS)
    vigil_cf = VIGIL_CF

    def configure(self, host: str) -> None:
        h = self.lab.host(host)
        h.write_file("/etc/ha.d/ha.cf", HACF.format(**self.setting))
        h.write_file("/etc/ha.d/authkeys", AUTHKEYS, mode=0o600)
        h.write_file("/etc/ha.d/haresources", HARESOURCES)
        h.write_file("/etc/ha.d/vigil.cf", self.vigil_cf)

    def start(self, host: str) -> None:
        self.processes[host] = self.lab.host(host).spawn(
            [VIGIL, "heartbeat", "-f", "--group-driver", self.driver], name="vigil")

    def ready(self) -> bool:
        done = self.lab.host("server6").run([VIGIL, "status", "--json"], check=False)
        if done.returncode != 0:
            return False
        nodes = json.loads(done.stdout)["nodes"]
        return any(n["name"].startswith("server5") and n["status"] == "active" for n in nodes)


class Heartbeat(Tool):
    name = "heartbeat"
    stabilize = 6.0  # heartbeat advertises deadtime + 2 s for its first 5 s

    def configure(self, host: str) -> None:
        h = self.lab.host(host)
        h.write_file("/etc/ha.d/ha.cf", HACF.format(**self.setting))
        h.write_file("/etc/ha.d/authkeys", AUTHKEYS, mode=0o600)
        h.write_file("/etc/ha.d/haresources", HARESOURCES)

    def start(self, host: str) -> None:
        self.processes[host] = self.lab.host(host).spawn(
            [HEARTBEAT], name="heartbeat", env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def ready(self) -> bool:
        done = self.lab.host("server6").run(["cl_status", "nodestatus", "server5.example.com"],
                                            check=False)
        return done.stdout.strip() == "active"


class Keepalived(Tool):
    name = "keepalived"

    def configure(self, host: str) -> None:
        state, priority = ("MASTER", 150) if host == "server5" else ("BACKUP", 100)
        self.lab.host(host).write_file(
            "/etc/keepalived/keepalived.conf",
            KEEPALIVED.format(name=host, state=state, priority=priority,
                              advert=self.setting["advert"], vip=VIP))

    def start(self, host: str) -> None:
        self.processes[host] = self.lab.host(host).spawn(
            ["keepalived", "-n", "-l", "-P", "-f", "/etc/keepalived/keepalived.conf",
             "-p", "/run/keepalived.pid", "-r", "/run/keepalived_vrrp.pid"], name="keepalived")


TOOLS = {"vigil": Vigil, "heartbeat": Heartbeat, "keepalived": Keepalived}


# -- runs ----------------------------------------------------------------------------------------

def holders(lab: Lab) -> set[str]:
    return {n for n in NODES if lab.host(n).is_up()
            and any(a.startswith(VIP + "/") for a in lab.addresses(n))}


def prepare_pair(lab: Lab) -> None:
    """Broadcast addresses (heartbeat's bcast needs them) and a responder on each director.

    Every run gets a lab of its own: a crashed host's namespace can take minutes to
    go away (the kernel retransmits on its orphaned TCP connections), so names are
    never reused.
    """
    for name in NODES:
        host = lab.host(name)
        for ifname, segment in (("eth0", "lan"), ("eth1", "hb")):
            cidr = f"{host.address(segment)}/24"
            host.run(f"ip addr del {cidr} dev {ifname} && ip addr add {cidr} brd + dev {ifname}")
        # as on a real LAN, a default router (the lab's gateway host): vigil's duplicate
        # probe times the segment's round trip against it
        host.run(["ip", "route", "replace", "default", "via", lab.host("gateway").address("lan")])
        web = host.spawn([sys.executable, "-c", RESPONDER], name="web")
        wait_until(lambda w=web: "ready" in w.output(), 10, f"responder on {name}")


def bring_up(lab: Lab, tool: Tool, timeout: float) -> None:
    prepare_pair(lab)
    for name in NODES:
        tool.configure(name)
    for name in NODES:
        tool.start(name)
    wait_until(lambda: holders(lab) == {"server5"}, timeout,
               lambda: f"{tool.name}: VIP on server5 only (now {holders(lab)})")
    wait_until(tool.ready, timeout, f"{tool.name}: server6 ready")
    time.sleep(tool.stabilize)


def host_failure(lab: Lab, tool: Tool, timeout: float) -> dict[str, object]:
    bring_up(lab, tool, timeout)
    probe = Probe(lab).start()
    wait_until(lambda: probe.first("server5", 0) is not None, 10, "the client reaching server5")
    t0 = time.monotonic()
    lab.crash("server5")
    try:
        wait_until(lambda: probe.first("server6", t0) is not None, timeout,
                   f"{tool.name}: the client reaching the VIP on server6")
        took = probe.first("server6", t0) - t0  # type: ignore[operator]
    finally:
        probe.stop()
    if TRACE and tool.name == "vigil":
        print(f"--- vigil on server6, failover {took:.3f} s:\n"
              + timeline(tool.processes["server6"]), file=sys.stderr, flush=True)
    if took > 5.0:  # an outlier: what the standby decided, for whoever reads the run
        for name, process in getattr(tool, "processes", {}).items():
            lines = [ln for ln in process.output().splitlines()
                     if "decision" in ln or "address." in ln or "peer." in ln]
            print(f"--- {tool.name} on {name}, slow failover ({took:.2f} s):\n"
                  + "\n".join(lines[-40:]), file=sys.stderr, flush=True)
    return {"failover": took}


#: --trace: print the standby's log from its `peer.dead` on, as milliseconds after it
TRACE = False


def timeline(process: LabProcess) -> str:
    """The standby's log lines from the peer's last death on, stamped with ms since it."""
    stamped = []
    for line in process.output().splitlines():
        match = re.match(r"\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d),(\d{3}) (.*)", line)
        if match:
            h, m, s, ms, rest = match.groups()
            stamped.append(((int(h) * 60 + int(m)) * 60 + int(s) + int(ms) / 1000, rest))
    # the last one: tight timers can call the peer dead for a moment during bring-up
    start = next((t for t, rest in reversed(stamped) if "peer.dead" in rest), None)
    if start is None:
        return "(no peer.dead line)"
    return "\n".join(f"{1000 * (t - start):7.1f} ms  {rest[:160]}"
                     for t, rest in stamped if t >= start)[:6000]


def partition_heal(lab: Lab, tool: Tool, timeout: float) -> dict[str, object]:
    bring_up(lab, tool, timeout)
    probe = Probe(lab).start()
    lab.partition("server5", "server6")
    wait_until(lambda: holders(lab) == {"server5", "server6"}, timeout,
               f"{tool.name}: both holding the VIP during the partition")
    time.sleep(0.5)
    healed = time.monotonic()
    lab.heal("server5", "server6")
    # settled: one holder and the client answered for 3 s in a row (or the window ends)
    deadline = healed + timeout
    stable_since = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        ok = len(holders(lab)) == 1 and probe.longest_outage(now - 1.0, now) < 0.5
        stable_since = (stable_since or now) if ok else None
        if stable_since is not None and now - stable_since >= 3.0:
            break
        time.sleep(0.1)
    end = time.monotonic()
    probe.stop()
    return {"outage": probe.longest_outage(healed, end), "holders": sorted(holders(lab)),
            "settle_window": end - healed}


def soak(lab: Lab, tool: Tool, seconds: float, timeout: float) -> dict[str, object]:
    bring_up(lab, tool, timeout)
    monitor = lab.host("server6").spawn(["ip", "-o", "monitor", "address"], name="monitor")
    hogs = [lab.host("client").spawn([sys.executable, "-c", HOG], name=f"hog{i}")
            for i in range(2)]
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(1.0)
    finally:
        for hog in hogs:
            hog.kill()
    taken = sum(1 for line in monitor.output().splitlines()
                if VIP + "/" in line and not line.startswith("Deleted"))
    monitor.stop()
    return {"spurious_failovers": taken, "seconds": seconds}


#: the director-crash scenario's "tools": the ldirectord resource starting a director
#: from cold, or activating a warm standby
DIRECTOR_MODES = ("vigil-cold", "vigil-warm")


def director_crash(mode: str) -> dict[str, object]:
    with Lab(seed_topology()) as lab:
        takeover = director_pair.measure(lab, warm=mode == "vigil-warm")
    return {"failover": takeover.seconds, "notes": takeover.notes}


CLUSTER_MODES = ("vigil-heartbeat", "pacemaker", "vigil-etcd")


def cluster_crash(mode: str) -> dict[str, object]:
    with Lab(pacemaker_cluster.topology()) as lab:
        if mode == "vigil-heartbeat":
            takeover = director_pair.measure(lab, warm=False)
            return {"recovery": takeover.recovery, "failover": takeover.seconds,
                    "notes": takeover.notes}
        cluster: pacemaker_cluster.ServedGroup
        if mode == "vigil-etcd":
            cluster = etcd_cluster.EtcdDirectors(lab)
        else:
            cluster = pacemaker_cluster.PacemakerCluster(lab)
        try:
            cluster.start()
            holder = cluster.wait_for_group(90.0)
            survivor, seconds = pacemaker_cluster.crash_and_time(cluster, holder, 60.0)
        finally:
            cluster.stop()
        return {"recovery": seconds, "crashed": holder, "took_over": survivor}


# -- report --------------------------------------------------------------------------------------

def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(results: dict, tools: list[str]) -> str:
    lines = []
    for key, runs in results.items():
        scenario, setting = key.split("/")
        lines.append(f"\n== {scenario}, setting {setting} ==")
        metric = {"host-failure": "failover", "partition-heal": "outage",
                  "soak": "spurious_failovers", "director-crash": "failover",
                  "cluster-crash": "recovery"}[scenario]
        names = (list(DIRECTOR_MODES) if scenario == "director-crash"
                 else list(CLUSTER_MODES) if scenario == "cluster-crash" else tools)
        medians = {}
        for tool in names:
            values = [r[metric] for r in runs.get(tool, []) if metric in r]
            med = median(values)
            medians[tool] = med
            if not values:
                lines.append(f"{tool:11s} no successful run")
                continue
            extra = ""
            if scenario == "partition-heal":
                finals = [",".join(r["holders"]) for r in runs[tool] if "holders" in r]
                extra = f"  final holders: {', '.join(sorted(set(finals)))}"
            lines.append(f"{tool:11s} runs {len(values):2d}  median {med:9.3f}  "
                         f"min {min(values):9.3f}  max {max(values):9.3f}{extra}")
        base = medians.get("vigil")
        for tool in names:
            if tool != "vigil" and base is not None and medians.get(tool):
                lines.append(f"vigil / {tool}: {base / medians[tool]:.3f}")
        vhb, pcmk = medians.get("vigil-heartbeat"), medians.get("pacemaker")
        if vhb and pcmk:
            lines.append(f"vigil heartbeat / pacemaker: {vhb / pcmk:.3f}")
        etcd = medians.get("vigil-etcd")
        if etcd and pcmk:
            lines.append(f"vigil on etcd / pacemaker: {etcd / pcmk:.3f}")
        cold, warm = medians.get("vigil-cold"), medians.get("vigil-warm")
        if cold and warm:
            lines.append(f"warm / cold: {warm / cold:.3f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--scenarios", default="host-failure,partition-heal")
    parser.add_argument("--settings", default="tight")
    parser.add_argument("--tools", default="vigil,heartbeat,keepalived")
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--vigil-cf", default="default", choices=sorted(VIGIL_CFS),
                        help="vigil's vigil.cf: as shipped (duplicate probe on) or no-probe")
    parser.add_argument("--vigil-driver", default="agents", choices=["agents", "test"],
                        help="vigil's group driver (test: its own minimal IPaddr agent)")
    parser.add_argument("--trace", action="store_true",
                        help="print vigil's standby log after each host failure, in ms")
    args = parser.parse_args()
    global TRACE
    TRACE = args.trace
    Vigil.driver = args.vigil_driver
    Vigil.vigil_cf = VIGIL_CFS[args.vigil_cf]
    tools = args.tools.split(",")
    results: dict[str, dict[str, list[dict]]] = {}
    for scenario in args.scenarios.split(","):
        if scenario in ("director-crash", "cluster-crash"):
            director = scenario == "director-crash"
            key = "director-crash/seed-lab" if director else "cluster-crash/trio-lab"
            modes = DIRECTOR_MODES if director else CLUSTER_MODES
            results[key] = {m: [] for m in modes}
            for run in range(args.runs):
                for mode in modes:  # interleaved: one run of each in turn
                    try:
                        outcome = director_crash(mode) if director else cluster_crash(mode)
                    except Exception as exc:
                        traceback.print_exc()
                        outcome = {"error": str(exc).splitlines()[0]}
                    results[key][mode].append(outcome)
                    print(f"{key} run {run + 1} {mode}: {outcome}", flush=True)
            continue
        settings = args.settings.split(",") if scenario != "soak" else ["soak"]
        for setting_name in settings:
            key = f"{scenario}/{setting_name}"
            results[key] = {t: [] for t in tools}
            runs = args.runs if scenario != "soak" else 1
            for run in range(runs):
                for tool_name in tools:  # interleaved: one run of each tool in turn
                    name = f"soak-{tool_name}" if scenario == "soak" else setting_name
                    setting = SETTINGS[name]
                    timeout = 120.0 if setting["deadtime"] in ("30",) else 60.0
                    try:
                        with Lab(pair_topology()) as lab:
                            tool = TOOLS[tool_name](lab, setting)
                            if scenario == "host-failure":
                                outcome = host_failure(lab, tool, timeout)
                            elif scenario == "partition-heal":
                                outcome = partition_heal(lab, tool, timeout)
                            else:
                                outcome = soak(lab, tool, args.soak_seconds, timeout)
                    except Exception as exc:
                        traceback.print_exc()
                        outcome = {"error": str(exc).splitlines()[0]}
                    results[key][tool_name].append(outcome)
                    print(f"{key} run {run + 1} {tool_name}: {outcome}", flush=True)
    print(report(results, tools))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
