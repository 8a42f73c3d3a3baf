"""Replicated volume benchmark: fio on (a) the backing file, (b) FUSE+loop without a peer,
(c) replicated with protocol C over the lab link, (d) protocol A; resync of 1% vs a full sync,
and a full sync vs the same bytes copied over the same link by one TCP stream.

Runs in a pair lab (server5 primary, server6 secondary). Every fio job runs on
every target in the same round, rounds interleaved; medians and ratios are
printed. Run as root:

    VIGIL_LAB_PREFIX=vr VIGIL_LAB_ROOT=/tmp/vigil-lab-vr \
        .venv/bin/python bench/volume/bench_volume.py [--rounds 5] [--runtime 4] [--compare-loops]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from vigil.lab import Lab, pair_topology

VIGIL = [sys.executable, "-m", "vigil", "volume"]

RESOURCES = {
    # name: (protocol, port, device, size, peer?)
    "rc": ("C", 7789, "/dev/drbd1", "512M", True),
    "ra": ("A", 7790, "/dev/drbd2", "512M", True),
    "rb": ("C", 7791, "/dev/drbd3", "512M", False),
    "rs": ("C", 7792, "/dev/drbd4", "1G", True),
}
#: with --compare-loops: protocol C on the standard asyncio loop instead of uvloop
LOOP_RESOURCE = {"rq": ("C", 7793, "/dev/drbd5", "512M", True)}
TCP_PORT = 7799

#: the resync settings docs/volume.md recommends (DRBD's adaptive controller)
ADAPTIVE = "c-plan-ahead 20; c-fill-target 16M; c-max-rate 400M; c-min-rate 4M;"
#: --sync fixed, for the sync resource: as fast as the link and both nodes go (DRBD's maximum)
FIXED = "c-plan-ahead 0; resync-rate 4G; c-min-rate 4M;"
#: seconds between dirtying the volume and reconnecting: application I/O seen within
#: APP_IO_WINDOW (0.5 s) holds a resync to c-min-rate, which is not what this measures
QUIET = 1.0

TEMPLATE = """\
resource {name} {{
  protocol {protocol};
  net {{ ping-int 2; connect-int 1; cram-hmac-alg sha1; shared-secret "bench"; }}
  disk {{ {disk} }}
  on server5.example.com {{ device {device}; disk /var/lib/vigil/{name}.img;
                           address 198.51.100.5:{port}; meta-disk internal; }}
  on server6.example.com {{ device {device}; disk /var/lib/vigil/{name}.img;
                           address 198.51.100.6:{port}; meta-disk internal; }}
}}
"""

JOBS = {
    "seq 1M QD1": ["--rw=write", "--bs=1M", "--iodepth=1"],
    "seq 1M QD32": ["--rw=write", "--bs=1M", "--iodepth=32"],
    "rand 4k QD1": ["--rw=randwrite", "--bs=4k", "--iodepth=1"],
    "rand 4k QD32": ["--rw=randwrite", "--bs=4k", "--iodepth=32"],
}
TARGETS = {
    "a backing file": "/var/lib/vigil/plain.img",
    "b fuse+loop": "/dev/drbd3",
    "c protocol C": "/dev/drbd1",
    "d protocol A": "/dev/drbd2",
}
LOOP_TARGET = {"e protocol C, asyncio loop": "/dev/drbd5"}
#: issue targets: (c)/(b) in every round
TARGET_RATIO = {"seq 1M QD1": 0.6, "seq 1M QD32": 0.6, "rand 4k QD1": 0.5}


def fio(host, target: str, job: list[str], runtime: float) -> tuple[float, float]:
    """(MiB/s, IOPS) of one fio run."""
    direct = "--direct=0" if not target.startswith("/dev/") else "--direct=1"
    engine = "--ioengine=psync" if direct == "--direct=0" else "--ioengine=libaio"
    if direct == "--direct=0":
        job = [j for j in job if not j.startswith("--iodepth")]
    done = host.run(["fio", "--name=b", f"--filename={target}", "--size=400M", direct, engine,
                     "--time_based", f"--runtime={runtime}", "--output-format=json",
                     "--group_reporting", *job], timeout=runtime + 60)
    text = done.stdout  # fio may print notes before its JSON
    write = json.loads(text[text.index("{"):])["jobs"][0]["write"]
    return write["bw_bytes"] / (1 << 20), write["iops"]


def status(host, name: str) -> dict:
    return json.loads(host.run([*VIGIL, "status", name, "--json"]).stdout)


def wait_sync(host, name: str, timeout: float = 600) -> None:
    host.run([*VIGIL, "wait-sync", name, "--timeout", str(timeout)], timeout=timeout + 30)


def resync_seconds(s5, s6, name: str) -> float:
    wait_sync(s5, name)
    return float(status(s5, name)["last_sync"]["seconds"])


def tcp_copy_seconds(s5, s6, size: int) -> float:
    """Seconds to copy `size` bytes of server5's rs backing file to server6 over TCP."""
    script = str(Path(__file__).with_name("tcp_copy.py"))
    s5.run(["sh", "-c", f"head -c {size} /var/lib/vigil/rs.img > /var/lib/vigil/tcp.src"],
           timeout=120)
    s6.run(["rm", "-f", "/var/lib/vigil/tcp.dst"])
    s6.spawn([sys.executable, script, "receive", str(TCP_PORT), "/var/lib/vigil/tcp.dst"],
             name="tcp-receive")
    done = s5.run([sys.executable, script, "send", "198.51.100.6", str(TCP_PORT),
                   "/var/lib/vigil/tcp.src"], timeout=300)
    return float(done.stdout.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runtime", type=float, default=4.0)
    parser.add_argument("--resync-rounds", type=int, default=2)
    parser.add_argument("--jobs", help="comma-separated job names to run (default: all)")
    parser.add_argument("--sync", choices=("adaptive", "fixed"), default="adaptive",
                        help="the sync resource's rate: the recommended adaptive settings "
                        "(c-max-rate 400M) or a fixed 4G")
    parser.add_argument("--compare-loops", action="store_true",
                        help="also run protocol C with the daemon on the standard asyncio loop")
    args = parser.parse_args()
    resources = {**RESOURCES, **(LOOP_RESOURCE if args.compare_loops else {})}
    targets = {**TARGETS, **(LOOP_TARGET if args.compare_loops else {})}
    jobs = {k: v for k, v in JOBS.items()
            if not args.jobs or k in args.jobs.split(",")}
    with Lab(pair_topology()) as lab:
        s5, s6 = lab.host("server5"), lab.host("server6")
        s5.run(["truncate", "-s", "512M", TARGETS["a backing file"]])
        for name, (protocol, port, device, size, peer) in resources.items():
            disk = FIXED if name == "rs" and args.sync == "fixed" else ADAPTIVE
            text = TEMPLATE.format(name=name, protocol=protocol, port=port, device=device,
                                   disk=disk)
            env = {"VIGIL_EVENT_LOOP": "asyncio"} if name in LOOP_RESOURCE else None
            for host in (s5, s6) if peer else (s5,):
                host.write_file(f"/etc/drbd.d/{name}.res", text)
                host.run(["truncate", "-s", size, f"/var/lib/vigil/{name}.img"])
                host.run([*VIGIL, "create-md", name])
                host.run([*VIGIL, "up", name] + ([] if peer else ["--standalone"]), env=env)
        try:
            for name in resources:
                s5.run([*VIGIL, "primary", "--force", name])
            full_first = resync_seconds(s5, s6, "rs")
            for name in ("rc", "ra", *(LOOP_RESOURCE if args.compare_loops else ())):
                wait_sync(s5, name)
            results: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for round_number in range(args.rounds):
                for job_name, job in jobs.items():
                    for target_name, target in targets.items():
                        results.setdefault((job_name, target_name), []).append(
                            fio(s5, target, job, args.runtime))
                print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
            # Resync: 1% of 1 GiB dirty (random 4 KiB blocks) vs a full sync, interleaved.
            partial, full, dirty = [], [full_first], 0
            volume = status(s5, "rs")["size"]
            tcp = [tcp_copy_seconds(s5, s6, volume)]
            for _ in range(args.resync_rounds):
                s5.run([*VIGIL, "disconnect", "rs"])
                s5.run(["fio", "--name=dirty", "--filename=/dev/drbd4", "--direct=1",
                        "--rw=randwrite", "--bs=4k", "--size=1000M", "--io_size=10M",
                        "--ioengine=psync", "--output-format=terse"], timeout=300)
                dirty = status(s5, "rs")["out_of_sync"]
                time.sleep(QUIET)
                s5.run([*VIGIL, "connect", "rs"])
                partial.append(resync_seconds(s5, s6, "rs"))
                s6.run([*VIGIL, "invalidate", "rs"])
                time.sleep(0.5)
                full.append(resync_seconds(s5, s6, "rs"))
                tcp.append(tcp_copy_seconds(s5, s6, volume))
        finally:
            for name, (*_, peer) in resources.items():
                for host in (s6, s5) if peer else (s5,):
                    host.run([*VIGIL, "down", name], check=False)

    report(jobs, targets, results)
    if not partial:
        return 0
    p, f = statistics.median(partial), statistics.median(full)
    print(f"\nsync resource: {args.sync} rate")
    print(f"resync of a {volume / (1 << 30):.2f} GiB volume: 1% dirty "
          f"({dirty // 4096} blocks) {p:.2f} s (runs {', '.join(f'{x:.2f}' for x in partial)}); "
          f"full sync {f:.2f} s (runs {', '.join(f'{x:.2f}' for x in full)}); ratio {p / f:.3f} "
          f"(target <= 0.1)")
    rates = [volume / s / (1 << 20) for s in full]
    tcp_rates = [volume / s / (1 << 20) for s in tcp]
    print(f"full sync {statistics.median(rates):.0f} MiB/s (runs "
          f"{', '.join(f'{r:.0f}' for r in rates)}); one TCP stream copying the same bytes "
          f"over the same link {statistics.median(tcp_rates):.0f} MiB/s (runs "
          f"{', '.join(f'{r:.0f}' for r in tcp_rates)}); sync / TCP "
          f"{statistics.median(rates) / statistics.median(tcp_rates):.2f} (target >= 0.5)")
    return 0


def report(jobs: dict[str, list[str]], targets: dict[str, str],
           results: dict[tuple[str, str], list[tuple[float, float]]]) -> None:
    """Medians per target, and each round's ratio to (b) with the lowest of them."""
    others = [t for t in targets if t[0] not in "ab"]
    print("\n| job | " + " | ".join(targets) + " | "
          + " | ".join(f"({t[0]})/(b) median, lowest round" for t in others) + " | target |")
    print("|---" * (len(targets) + len(others) + 2) + "|")
    for job_name in jobs:
        unit = 0 if job_name.startswith("seq") else 1
        cells = []
        for target_name in targets:
            value = statistics.median(r[unit] for r in results[(job_name, target_name)])
            cells.append(f"{value:.0f} MiB/s" if unit == 0 else f"{value:.0f} IOPS")
        base = [r[unit] for r in results[(job_name, "b fuse+loop")]]
        ratios = []
        for target_name in others:
            per_round = [r[unit] / b for r, b in zip(results[(job_name, target_name)], base,
                                                     strict=True)]
            ratios.append(f"{statistics.median(per_round):.2f}, {min(per_round):.2f}")
        wanted = TARGET_RATIO.get(job_name)
        print(f"| {job_name} | {' | '.join(cells)} | {' | '.join(ratios)} | "
              f"{f'(c)/(b) >= {wanted} every round' if wanted else ''} |")


if __name__ == "__main__":
    sys.exit(main())
