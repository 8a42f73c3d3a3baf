"""ldirectord's own check engine against vigil's, in the same QEMU guest (real IPVS).

The guest (vigil.testing.guest: Debian's kernel, emulated, about ten times
slower than the host) runs a loopback fleet of listeners, then ldirectord
(fork=no, connect checks, checkinterval=1) on a generated ldirectord.cf, then
vigil's director on the same file, each for the same window. We print the
checks per second each sustains and the CPU each uses. Only the ratio means
something: absolute figures are the emulator's.

    .venv/bin/python bench/director/ldirectord_guest.py [--reals 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import DIRECTOR, FLEET, config

from vigil.testing.guest import guest_unavailable_reason, run_in_guest

SCRIPT = textwrap.dedent("""\
    set -e
    modprobe ip_vs
    cat > fleet.py <<'PY'
    {fleet}
    PY
    cat > director.py <<'PY'
    {director}
    PY
    cat > ld.cf <<'CF'
    {config}
    CF
    {python} fleet.py {reals} > fleet.out &
    for i in $(seq 100); do grep -q ready fleet.out 2>/dev/null && break; sleep 0.2; done
    ticks=$(getconf CLK_TCK)
    cpu() {{ awk '{{print $14 + $15}}' /proc/$1/stat; }}
    ldirectord -d /xfer/ld.cf start > ld.log 2>&1 &
    ld=$!
    started=$(date +%s)
    # ldirectord adds each real server with its own ipvsadm runs first: wait for checks.
    for i in $(seq 1200); do grep -q 'Checking connect' ld.log && break; sleep 0.5; done
    echo "ldirectord first check after $(( $(date +%s) - started )) s"
    sleep {warmup}
    c0=$(cpu $ld); n0=$(grep -c 'Checking connect' ld.log || true); t0=$(date +%s.%N)
    sleep {seconds}
    c1=$(cpu $ld); n1=$(grep -c 'Checking connect' ld.log || true); t1=$(date +%s.%N)
    wall=$(awk "BEGIN {{print $t1 - $t0}}")
    echo "ldirectord cpu_ticks=$((c1 - c0)) ticks_per_s=$ticks checks=$((n1 - n0)) wall=$wall"
    kill $ld; sleep 2
    mkdir -p /run/vigil-bench/run /run/vigil-bench/st
    VIGIL_RUN_DIR=/run/vigil-bench/run VIGIL_STATE_DIR=/run/vigil-bench/st \\
        {python} director.py /xfer/ld.cf \\
        {warmup} {seconds} 0
""")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reals", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=15)
    args = parser.parse_args()
    reason = guest_unavailable_reason()
    if reason:
        print(f"no guest here: {reason}")
        return 1
    text = config(args.reals).replace("quiescent=yes", "quiescent=yes\nfork=no")
    script = SCRIPT.format(fleet=FLEET, director=DIRECTOR, config=text, reals=args.reals,
                           python=sys.executable, warmup=args.warmup, seconds=args.seconds)
    result = run_in_guest(script, timeout=args.warmup * 2 + args.seconds * 2 + 900,
                          memory_mib=2048, hostname="director")
    print("\n".join(line for line in result.output.splitlines()
                    if line.startswith(("ldirectord", "{"))))
    ld = re.search(r"ldirectord cpu_ticks=(\d+) ticks_per_s=(\d+) checks=(\d+) wall=([\d.]+)",
                   result.output)
    ours = re.search(r'\{"wall": ([\d.]+), "cpu": ([\d.]+).*"checks": (\d+)', result.output)
    if not ld or not ours:
        print(result.console[-3000:])
        return 1
    ld_cpu = int(ld.group(1)) / int(ld.group(2)) / float(ld.group(4))
    ld_rate = int(ld.group(3)) / float(ld.group(4))
    our_cpu = float(ours.group(2)) / float(ours.group(1))
    our_rate = int(ours.group(3)) / float(ours.group(1))
    print(f"\n{args.reals} real servers, connect checks, checkinterval=1, in the guest:")
    print(f"  ldirectord: {ld_rate:8.0f} checks/s at {ld_cpu * 100:5.1f}% CPU "
          f"({ld_cpu / max(ld_rate, 1e-9) * 1e6:.0f} µs per check)")
    print(f"  vigil:      {our_rate:8.0f} checks/s at {our_cpu * 100:5.1f}% CPU "
          f"({our_cpu / max(our_rate, 1e-9) * 1e6:.0f} µs per check)")
    print(f"  checks/s ratio vigil/ldirectord: {our_rate / max(ld_rate, 1e-9):.1f}; CPU per "
          f"check ratio ldirectord/vigil: "
          f"{(ld_cpu / max(ld_rate, 1e-9)) / (our_cpu / max(our_rate, 1e-9)):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
