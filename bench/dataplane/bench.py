"""The kernel data paths against the direct path, HAProxy and the userspace proxy.

One lab, one run, interleaved: wrk on the client, straight to rs1, through the
VIP with vigil's direct routing (nftables backend), through vigil's NAT, through
HAProxy 2.6 in TCP mode on the director, and through vigil's userspace proxy;
keep-alive and a new connection per request. Each repetition runs every path
once, in a rotated order; we print the median req/s of each path and the
median of its per-repetition ratios to the direct run of the same repetition.

    server5  eth0 198.51.100.5   DR VIP .100 (vigil, nftables), HAProxy .101, userspace .102
                                 (default: one process), .104 (one process per CPU),
                                 .103 the study's stateless ruleset (a), for reference
             eth1 203.0.113.5    NAT VIP 203.0.113.100 (vigil, nftables)
    rs1/rs2  198.51.100.1/.2     nginx (1 worker each); VIP .100 on lo; default via .5
    client   198.51.100.10 (lan, DR/HAProxy/proxy/direct), 203.0.113.10 (wan, NAT)

    sudo VIGIL_LAB_PREFIX=vk VIGIL_LAB_ROOT=/tmp/vigil-lab-vk \\
        .venv/bin/python bench/dataplane/bench.py [--reps 3] [--seconds 5] [--json out.json]

Note: "direct" hits one nginx worker, the balanced paths two; on this 2-core
machine everything (client, director, real servers) shares the same cores, so
that adds no capacity, and other work on the machine makes single runs noisy:
read the ratios, over several repetitions.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "lab" / "director"))
from director_lab_support import control, nginx, port_open

from vigil.lab import Lab
from vigil.lab.topology import HostSpec, Port, Topology, mac_for
from vigil.testing import vigil_command, wait_until

DR_VIP, HAPROXY_VIP, PROXY_VIP, NAT_VIP = ("198.51.100.100", "198.51.100.101",
                                           "198.51.100.102", "203.0.113.100")
#: the userspace proxy again, with one process per CPU (VIGIL_PROXY_WORKERS=cpus)
WORKERS_VIP = "198.51.100.104"
#: The study's stateless ruleset (a): the cheapest netdev direct routing there is,
#: for reference (no affinity across changes, MACs written into the rule).
REFERENCE_VIP = "198.51.100.103"
RS1, RS2 = "198.51.100.1", "198.51.100.2"

KERNEL_CF = f"""\
checktimeout=3
checkinterval=5
quiescent=yes
logfile="/var/log/ldirectord.log"
virtual={DR_VIP}:80
\treal={RS1}:80 gate
\treal={RS2}:80 gate
\tscheduler=rr
\tchecktype=connect
virtual={NAT_VIP}:80
\treal={RS1}:80 masq
\treal={RS2}:80 masq
\tscheduler=rr
\tchecktype=connect
"""

PROXY_CF = f"""\
checktimeout=3
checkinterval=5
logfile="/var/log/proxy.log"
virtual={PROXY_VIP}:80
\treal={RS1}:80 gate
\treal={RS2}:80 gate
\tscheduler=rr
\tchecktype=connect
"""

WORKERS_CF = PROXY_CF.replace(PROXY_VIP, WORKERS_VIP).replace("proxy.log", "workers.log")

HAPROXY_CFG = f"""\
global
    maxconn 8000
    nbthread 2
    pidfile /run/haproxy-bench.pid
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend vip
    bind {HAPROXY_VIP}:80
    default_backend reals
backend reals
    balance roundrobin
    server rs1 {RS1}:80
    server rs2 {RS2}:80
"""


def topology() -> Topology:
    def port(segment: str, ifname: str, index: int, host: int, address: str) -> Port:
        v6 = "2001:db8:0:1" if segment == "lan" else "2001:db8:0:2"
        octet = int(address.rsplit(".", 1)[1])
        return Port(segment, ifname, (f"{address}/24", f"{v6}::{octet:x}/64"),
                    mac_for(index, host))

    return Topology(
        name="dataplane-bench",
        segments=("lan", "wan"),
        hosts=(
            HostSpec("server5", "server5.example.com",
                     (port("lan", "eth0", 0, 1, "198.51.100.5"),
                      port("wan", "eth1", 1, 1, "203.0.113.5")), "director"),
            HostSpec("rs1", "rs1.example.com", (port("lan", "eth0", 0, 2, RS1),), "rs"),
            HostSpec("rs2", "rs2.example.com", (port("lan", "eth0", 0, 3, RS2),), "rs"),
            HostSpec("client", "client.example.com",
                     (port("lan", "eth0", 0, 4, "198.51.100.10"),
                      port("wan", "eth1", 1, 4, "203.0.113.10")), "client"),
        ),
    )


def run(host, *args: str, **kwargs):
    return host.run(vigil_command(*args), **kwargs)


def table_weights(director, instance: str) -> dict[str, dict[str, int]]:
    table = control(director, {"command": "status"}, instance)["table"]
    return {s["key"]["address"]: {r["address"]: r["weight"] for r in s["reals"]}
            for s in table}


def wrk(lab: Lab, url: str, seconds: float, close: bool) -> float:
    argv = ["wrk", "-t2", "-c50", f"-d{seconds:g}s"]
    if close:
        argv += ["-H", "Connection: close"]
    done = lab.host("client").run([*argv, url], timeout=seconds + 60)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    errors = re.search(r"Socket errors: (.*)", done.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk said: {done.stdout}\n{done.stderr}")
    if errors or non2xx:
        print(f"    ({url} close={close}: {errors.group(0) if errors else ''} "
              f"{non2xx.group(0) if non2xx else ''})")
    return float(match.group(1))


def mac_of(host, device: str = "eth0") -> str:
    return json.loads(host.run(["ip", "-j", "link", "show", device]).stdout)[0]["address"]


def load_reference(lab: Lab) -> None:
    """(a): ether saddr set DIRECTOR ether daddr set jhash ... map {slot: RS MAC} fwd."""
    server5 = lab.host("server5")
    where = {"family": "netdev", "table": "bench_reference"}
    slots = {"set": [[0, mac_of(lab.host("rs1"))], [1, mac_of(lab.host("rs2"))]]}
    key = {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}},
                      {"payload": {"protocol": "tcp", "field": "sport"}}]}
    rule = [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": REFERENCE_VIP}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": 80}},
        {"mangle": {"key": {"payload": {"protocol": "ether", "field": "saddr"}},
                    "value": mac_of(server5)}},
        {"mangle": {"key": {"payload": {"protocol": "ether", "field": "daddr"}},
                    "value": {"map": {"key": {"jhash": {"mod": 2, "seed": 0x5EED,
                                                        "expr": key}},
                                      "data": slots}}}},
        {"fwd": {"dev": "eth0"}},
    ]
    commands = [
        {"add": {"table": {"family": "netdev", "name": "bench_reference"}}},
        {"add": {"chain": {**where, "name": "ingress", "type": "filter", "hook": "ingress",
                           "dev": "eth0", "prio": -10, "policy": "accept"}}},
        {"add": {"rule": {**where, "chain": "ingress", "expr": rule}}},
    ]
    server5.run(["nft", "-j", "-f", "-"], input=json.dumps({"nftables": commands}))


def set_up(lab: Lab) -> str:
    server5, client = lab.host("server5"), lab.host("client")
    for name in ("rs1", "rs2"):
        host = lab.host(name)
        nginx(host, name)
        run(host, "realserver", "start", "--vip", DR_VIP)
        run(host, "realserver", "start", "--vip", REFERENCE_VIP)
        host.run(["ip", "route", "add", "default", "via", "198.51.100.5"])
    for address in (DR_VIP, HAPROXY_VIP, PROXY_VIP, REFERENCE_VIP, WORKERS_VIP):
        lab.add_address("server5", "eth0", f"{address}/24")
    lab.add_address("server5", "eth1", f"{NAT_VIP}/24")
    server5.sysctl("net.ipv4.ip_forward", 1)
    # Many short connections: let the client and the proxies reuse ports quickly.
    for host in (server5, client):
        host.sysctl("net.ipv4.tcp_tw_reuse", 1)
        host.sysctl("net.ipv4.ip_local_port_range", "1024 65000")
    server5.write_file("/etc/ha.d/ldirectord.cf", KERNEL_CF)
    run(server5, "director", "--backend", "nftables", "start")
    server5.write_file("/etc/ha.d/proxy.cf", PROXY_CF)
    run(server5, "director", "--backend", "userspace", "proxy.cf", "start")
    server5.write_file("/etc/ha.d/workers.cf", WORKERS_CF)
    run(server5, "director", "--backend", "userspace", "workers.cf", "start",
        env={"VIGIL_PROXY_WORKERS": "cpus"})
    up = {RS1: 1, RS2: 1}
    wait_until(lambda: table_weights(server5, "ldirectord.cf") == {DR_VIP: up, NAT_VIP: up},
               20, "kernel director ready")
    wait_until(lambda: table_weights(server5, "proxy.cf") == {PROXY_VIP: up}, 20,
               "userspace director ready")
    wait_until(lambda: table_weights(server5, "workers.cf") == {WORKERS_VIP: up}, 20,
               "userspace director with workers ready")
    wait_until(lambda: "nftables.settled" in server5.read_file("/var/log/ldirectord.log"),
               20, "kernel data path settled")
    load_reference(lab)
    server5.write_file("/etc/haproxy-bench.cfg", HAPROXY_CFG)
    server5.spawn(["haproxy", "-db", "-f", "/etc/haproxy-bench.cfg"], name="haproxy")
    wait_until(lambda: port_open(client, HAPROXY_VIP, 80), 10, "haproxy")
    return server5.run(["haproxy", "-v"]).stdout.splitlines()[0]


PATHS = {
    "direct rs1": f"http://{RS1}/",
    "vigil DR (nftables)": f"http://{DR_VIP}/",
    "vigil NAT (nftables)": f"http://{NAT_VIP}/",
    "HAProxy TCP": f"http://{HAPROXY_VIP}/",
    "vigil userspace": f"http://{PROXY_VIP}/",
    "userspace, per CPU": f"http://{WORKERS_VIP}/",
    "reference (a)": f"http://{REFERENCE_VIP}/",
}


def report(results: dict[str, dict[str, list[float]]], seconds: float, reps: int,
           haproxy: str) -> None:
    print(f"\nwrk -t2 -c50 -d{seconds:g}s, {reps} interleaved repetitions; {haproxy}")
    for mode, rows in results.items():
        direct = rows["direct rs1"]
        print(f"\n{mode}:")
        print(f"  {'path':22} {'req/s (median)':>15} {'ratio to direct':>16} {'(min-max)':>12}")
        for name, rates in rows.items():
            ratios = [r / d for r, d in zip(rates, direct, strict=True)]
            print(f"  {name:22} {statistics.median(rates):15.0f} "
                  f"{statistics.median(ratios):16.2f} "
                  f"{min(ratios):6.2f}-{max(ratios):.2f}")
        haproxy_rates = rows["HAProxy TCP"]
        for name in ("vigil DR (nftables)", "vigil NAT (nftables)", "vigil userspace",
                     "userspace, per CPU"):
            if name not in rows:
                continue
            times = [r / h for r, h in zip(rows[name], haproxy_rates, strict=True)]
            print(f"  {name} / HAProxy: {statistics.median(times):.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--json", help="write the raw rates here")
    parser.add_argument("--paths", choices=("all", "proxies"), default="all",
                        help="proxies: only direct, HAProxy and the userspace proxy (both)")
    args = parser.parse_args()
    paths = PATHS if args.paths == "all" else {
        name: PATHS[name] for name in ("direct rs1", "HAProxy TCP", "vigil userspace",
                                       "userspace, per CPU")}
    results: dict[str, dict[str, list[float]]] = {"keep-alive": {}, "new connection": {}}
    with Lab(topology()) as lab:
        haproxy = set_up(lab)
        names = list(paths)
        try:
            for rep in range(args.reps):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for mode, close in (("keep-alive", False), ("new connection", True)):
                    for name in order:
                        rate = wrk(lab, paths[name], args.seconds, close)
                        results[mode].setdefault(name, []).append(rate)
                        print(f"rep {rep + 1} {mode:15} {name:22} {rate:10.0f} req/s",
                              flush=True)
        finally:
            server5 = lab.host("server5")
            run(server5, "director", "stop", check=False)
            run(server5, "director", "proxy.cf", "stop", check=False)
            run(server5, "director", "workers.cf", "stop", check=False)
    ordered = {mode: {name: rows[name] for name in paths} for mode, rows in results.items()}
    report(ordered, args.seconds, args.reps, haproxy)
    if args.json:
        Path(args.json).write_text(json.dumps(ordered, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
