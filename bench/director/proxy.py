"""The userspace proxy against HAProxy 2.6 in TCP mode, in the lab, interleaved.

server5 runs both: vigil's director (userspace backend) on the VIP
198.51.100.100:80 and HAProxy (mode tcp, roundrobin) on 198.51.100.101:80, to
the same two nginx real servers. wrk runs on the client, straight to rs1 and
through each proxy, keep-alive and with a new connection per request, in a
rotated order per repetition. We print medians and ratios to the direct path
and of vigil to HAProxy.

    sudo VIGIL_LAB_PREFIX=vd VIGIL_LAB_ROOT=/tmp/vigil-lab-vd \\
        .venv/bin/python bench/director/proxy.py [--reps 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "lab" / "director"))
from director_lab_support import nginx, port_open, vigil, weights

from vigil.lab import Lab, seed_topology
from vigil.testing import wait_until

VIP, HAPROXY_VIP = "198.51.100.100", "198.51.100.101"
RS1, RS2 = "198.51.100.1", "198.51.100.2"

DIRECTOR_CF = f"""\
checktimeout=3
checkinterval=5
virtual={VIP}:80
\treal={RS1}:80 gate
\treal={RS2}:80 gate
\tscheduler=rr
\tchecktype=connect
"""

HAPROXY_CFG = f"""\
global
    maxconn 8000
    pidfile /run/haproxy-vd.pid
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


def wrk(lab: Lab, url: str, seconds: float, close: bool) -> float:
    argv = ["wrk", "-t2", "-c50", f"-d{seconds:g}s"]
    if close:
        argv += ["-H", "Connection: close"]
    done = lab.host("client").run([*argv, url], timeout=seconds + 60)
    match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    errors = re.search(r"Socket errors: (.*)", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk said: {done.stdout}\n{done.stderr}")
    if errors:
        print(f"    ({url} close={close}: socket errors {errors.group(1)})")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    with Lab(seed_topology()) as lab:
        server5 = lab.host("server5")
        lab.add_address("server5", "eth0", f"{VIP}/24")
        lab.add_address("server5", "eth0", f"{HAPROXY_VIP}/24")
        # Both proxies open a connection to a real server per client connection.
        for host in ("server5", "client"):
            lab.host(host).sysctl("net.ipv4.tcp_tw_reuse", 1)
            lab.host(host).sysctl("net.ipv4.ip_local_port_range", "1024 65000")
        nginx(lab.host("rs1"), "rs1")
        nginx(lab.host("rs2"), "rs2")
        server5.write_file("/etc/ha.d/ldirectord.cf", DIRECTOR_CF)
        vigil(server5, "director", "--backend", "userspace", "start")
        wait_until(lambda: weights(server5) == {RS1: 1, RS2: 1}, 15, "director ready")
        server5.write_file("/etc/haproxy-vd.cfg", HAPROXY_CFG)
        server5.spawn(["haproxy", "-db", "-f", "/etc/haproxy-vd.cfg"], name="haproxy")
        wait_until(lambda: port_open(lab.host("client"), HAPROXY_VIP, 80), 10, "haproxy")
        version = server5.run(["haproxy", "-v"]).stdout.splitlines()[0]
        paths = {"direct rs1": f"http://{RS1}/", "vigil userspace": f"http://{VIP}/",
                 "haproxy tcp": f"http://{HAPROXY_VIP}/"}
        results: dict[tuple[str, bool], list[float]] = {}
        names = list(paths)
        for rep in range(args.reps):
            for close in (False, True):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for name in order:
                    rate = wrk(lab, paths[name], args.seconds, close)
                    results.setdefault((name, close), []).append(rate)
                    print(f"rep {rep + 1} {'close' if close else 'keep-alive':10} "
                          f"{name:16} {rate:10.0f} req/s", flush=True)
        vigil(server5, "director", "stop", check=False)
    print(f"\nwrk -t2 -c50 -d{args.seconds:g}s, {args.reps} interleaved repetitions; "
          f"HAProxy: {version}")
    for close in (False, True):
        direct = results[("direct rs1", close)]
        print(f"\n{'new connection per request' if close else 'keep-alive'}:")
        for name in names:
            rates = results[(name, close)]
            ratios = [r / d for r, d in zip(rates, direct, strict=True)]
            print(f"  {name:16} median {statistics.median(rates):9.0f} req/s   "
                  f"ratio to direct {statistics.median(ratios):.2f}")
        ours = [v / h for v, h in zip(results[("vigil userspace", close)],
                                      results[("haproxy tcp", close)], strict=True)]
        print(f"  vigil userspace / haproxy: {statistics.median(ours):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
