"""Replicated volume benchmark: fio on (a) the backing file, (b) FUSE+loop without a peer,
(c) replicated with protocol C over the lab link, (d) protocol A; resync of 1% vs a full sync.

Runs in a pair lab (server5 primary, server6 secondary). Every fio job runs on
every target in the same round, rounds interleaved; medians and ratios are
printed. Run as root:

    VIGIL_LAB_PREFIX=vr VIGIL_LAB_ROOT=/tmp/vigil-lab-vr \
        .venv/bin/python bench/volume/bench_volume.py [--rounds 3] [--runtime 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from vigil.lab import Lab, pair_topology

VIGIL = [sys.executable, "-m", "vigil", "volume"]

RESOURCES = {
    # name: (protocol, port, device, size, peer?)
    "rc": ("C", 7789, "/dev/drbd1", "512M", True),
    "ra": ("A", 7790, "/dev/drbd2", "512M", True),
    "rb": ("C", 7791, "/dev/drbd3", "512M", False),
    "rs": ("C", 7792, "/dev/drbd4", "1G", True),
}

TEMPLATE = """\
resource {name} {{
  protocol {protocol};
  net {{ ping-int 2; connect-int 1; cram-hmac-alg sha1; shared-secret "bench"; }}
  disk {{ c-plan-ahead 20; c-fill-target 16M; c-max-rate 400M; c-min-rate 4M; }}
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runtime", type=float, default=4.0)
    parser.add_argument("--resync-rounds", type=int, default=2)
    parser.add_argument("--jobs", help="comma-separated job names to run (default: all)")
    args = parser.parse_args()
    jobs = {k: v for k, v in JOBS.items()
            if not args.jobs or k in args.jobs.split(",")}
    with Lab(pair_topology()) as lab:
        s5, s6 = lab.host("server5"), lab.host("server6")
        s5.run(["truncate", "-s", "512M", TARGETS["a backing file"]])
        for name, (protocol, port, device, size, peer) in RESOURCES.items():
            text = TEMPLATE.format(name=name, protocol=protocol, port=port, device=device)
            for host in (s5, s6) if peer else (s5,):
                host.write_file(f"/etc/drbd.d/{name}.res", text)
                host.run(["truncate", "-s", size, f"/var/lib/vigil/{name}.img"])
                host.run([*VIGIL, "create-md", name])
                host.run([*VIGIL, "up", name] + ([] if peer else ["--standalone"]))
        try:
            for name in RESOURCES:
                s5.run([*VIGIL, "primary", "--force", name])
            full_first = resync_seconds(s5, s6, "rs")
            for name in ("rc", "ra"):
                wait_sync(s5, name)
            results: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for round_number in range(args.rounds):
                for job_name, job in jobs.items():
                    for target_name, target in TARGETS.items():
                        results.setdefault((job_name, target_name), []).append(
                            fio(s5, target, job, args.runtime))
                print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
            # Resync: 1% of 1 GiB dirty (random 4 KiB blocks) vs a full sync, interleaved.
            partial, full, dirty = [], [full_first], 0
            for _ in range(args.resync_rounds):
                s5.run([*VIGIL, "disconnect", "rs"])
                s5.run(["fio", "--name=dirty", "--filename=/dev/drbd4", "--direct=1",
                        "--rw=randwrite", "--bs=4k", "--size=1000M", "--io_size=10M",
                        "--ioengine=psync", "--output-format=terse"], timeout=300)
                dirty = status(s5, "rs")["out_of_sync"]
                s5.run([*VIGIL, "connect", "rs"])
                partial.append(resync_seconds(s5, s6, "rs"))
                s6.run([*VIGIL, "invalidate", "rs"])
                time.sleep(0.5)
                full.append(resync_seconds(s5, s6, "rs"))
            volume = status(s5, "rs")["size"]
        finally:
            for name, (*_, peer) in RESOURCES.items():
                for host in (s6, s5) if peer else (s5,):
                    host.run([*VIGIL, "down", name], check=False)

    print("\n| job | (a) backing file | (b) FUSE+loop | (c) protocol C | (d) protocol A "
          "| (c)/(b) | (d)/(b) |")
    print("|---|---|---|---|---|---|---|")
    for job_name in jobs:
        medians = {}
        for target_name in TARGETS:
            runs = results[(job_name, target_name)]
            medians[target_name] = (statistics.median(r[0] for r in runs),
                                    statistics.median(r[1] for r in runs))
        unit = 0 if job_name.startswith("seq") else 1
        cells = [f"{medians[t][0]:.0f} MiB/s" if unit == 0 else f"{medians[t][1]:.0f} IOPS"
                 for t in TARGETS]
        b = medians["b fuse+loop"][unit]
        c_ratio = medians["c protocol C"][unit] / b
        d_ratio = medians["d protocol A"][unit] / b
        print(f"| {job_name} | {' | '.join(cells)} | {c_ratio:.2f} | {d_ratio:.2f} |")
    if not partial:
        return 0
    p, f = statistics.median(partial), statistics.median(full)
    print(f"\nresync of a {volume / (1 << 30):.2f} GiB volume: 1% dirty "
          f"({dirty // 4096} blocks) {p:.2f} s (runs {', '.join(f'{x:.2f}' for x in partial)}); "
          f"full sync {f:.2f} s (runs {', '.join(f'{x:.2f}' for x in full)}); ratio {p / f:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
