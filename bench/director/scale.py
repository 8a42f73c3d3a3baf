"""Scale: the director checking 10,000 real servers every second with connect checks.

A fleet of listeners on loopback (127.0.1.0/24 .. addresses, 100 ports each) in
its own process accepts and closes; the director runs the whole pipeline
(ldirectord.cf reader, check engine, health policy, reconcile, in-memory
backend) in another process pinned to one core. We print the checks per
second it sustains and the CPU it uses (getrusage), as a share of one core.

    .venv/bin/python bench/director/scale.py [--reals 10000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FLEET = textwrap.dedent("""
    import resource, selectors, socket, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    count, per = int(sys.argv[1]), 100
    sel = selectors.EpollSelector()
    for i in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((f"127.0.{1 + i // per // 250}.{1 + i // per % 250}", 20000 + i % per))
        s.listen(256)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            while True:
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    break
                conn.close()
""")

DIRECTOR = textwrap.dedent("""
    import asyncio, json, os, resource, sys, time
    from pathlib import Path
    os.sched_setaffinity(0, {int(sys.argv[4])})
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    from vigil.director import daemon
    from vigil.director.backends.memory import MemoryBackend

    async def main():
        director = daemon.Director(Path(sys.argv[1]), MemoryBackend())
        runner = asyncio.create_task(director.run())
        warmup, seconds = float(sys.argv[2]), float(sys.argv[3])
        await asyncio.sleep(warmup)
        r0, t0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), \
            director.engine.checks_run
        await asyncio.sleep(seconds)
        r1, t1, c1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), \
            director.engine.checks_run
        health = director.policy.snapshot()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        print(json.dumps({
            "wall": t1 - t0, "cpu": cpu, "user": r1.ru_utime - r0.ru_utime,
            "system": r1.ru_stime - r0.ru_stime, "checks": c1 - c0,
            "up": sum(1 for row in health if row["state"] == "up"),
            "reals": len(health), "max_rss_mb": r1.ru_maxrss / 1024,
        }), flush=True)
        director._stop.set()
        await runner

    daemon.event_loop_runner()(main())
""")


def core_times(cpu: int) -> list[int]:
    """user nice system idle iowait irq softirq ... of one core, in clock ticks."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            return [int(x) for x in line.split()[1:]]
    return []


def config(reals: int, per: int = 100) -> str:
    lines = ["checktimeout=3", "checkinterval=1", "quiescent=yes"]
    for v in range(reals // per):
        lines += [f"virtual=127.0.0.1:{30000 + v}", "\tchecktype=connect", "\tscheduler=wrr"]
        for i in range(v * per, (v + 1) * per):
            lines.append(f"\treal=127.0.{1 + i // per // 250}.{1 + i // per % 250}:"
                         f"{20000 + i % per} masq")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reals", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--cpu", type=int, default=0, help="the core the director runs on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-scale-") as tmp:
        cf = Path(tmp) / "scale.cf"
        cf.write_text(config(args.reals))
        fleet_cpu = 1 - args.cpu if os.cpu_count() and os.cpu_count() > 1 else args.cpu
        fleet = subprocess.Popen(["taskset", "-c", str(fleet_cpu), sys.executable, "-c", FLEET,
                                  str(args.reals)], stdout=subprocess.PIPE, text=True)
        try:
            assert fleet.stdout is not None
            if fleet.stdout.readline().strip() != "ready":
                raise SystemExit("fleet did not start")
            env = {**os.environ, "VIGIL_RUN_DIR": f"{tmp}/run", "VIGIL_STATE_DIR": f"{tmp}/st"}
            Path(f"{tmp}/run").mkdir()
            started = time.monotonic()
            core_before = core_times(args.cpu)
            done = subprocess.run(
                [sys.executable, "-c", DIRECTOR, str(cf), str(args.warmup), str(args.seconds),
                 str(args.cpu)], env=env, capture_output=True, text=True,
                timeout=args.warmup + args.seconds + 120)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            core_after = core_times(args.cpu)
            line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
            result = json.loads(line)
        finally:
            fleet.terminate()
            fleet.wait(10)
    share = result["cpu"] / result["wall"]
    rate = result["checks"] / result["wall"]
    print(f"real servers: {result['reals']} (up: {result['up']}), checkinterval=1, connect checks")
    print(f"checks/s: {rate:.0f} (target {args.reals})")
    print(f"director CPU: {share * 100:.1f}% of one core "
          f"(user {result['user'] / result['wall'] * 100:.1f}%, "
          f"system {result['system'] / result['wall'] * 100:.1f}%), "
          f"max RSS {result['max_rss_mb']:.0f} MB, ran {time.monotonic() - started:.0f} s")
    ticks = os.sysconf("SC_CLK_TCK")
    elapsed = time.monotonic() - started
    softirq = (core_after[6] - core_before[6]) / ticks / elapsed
    print(f"softirq time on core {args.cpu} over the whole run (TCP work the kernel may do "
          f"outside the process; includes other load): {softirq * 100:.1f}%")
    print(f"ratio to the 50% budget: {share / 0.5:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
