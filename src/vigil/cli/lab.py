"""`vigil lab`: build the seed's machines on this one, and work in them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from vigil.cli import Subparsers
from vigil.errors import UsageError
from vigil.lab import Lab, existing_labs, sweep, topology_named
from vigil.lab.topology import TOPOLOGIES


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="virtual hosts on this machine (network namespaces) for demos and tests",
        description=(
            "Build a topology of virtual hosts, each with its own network, hostname, "
            "/etc, /var and /run, joined by virtual switches. Nothing touches the "
            "machine's own network."
        ),
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    up = verbs.add_parser("up", help="build a lab and leave it running")
    up.add_argument("--topology", default="seed", choices=sorted(TOPOLOGIES))
    up.add_argument(
        "--multipath", choices=("resilient", "hash-threshold"),
        help="ecmp topology: how the router spreads flows over the directors (default: "
             "resilient nexthop groups where the kernel has them, Linux 5.13+)")
    up.set_defaults(handler=cmd_up)

    status = verbs.add_parser("status", help="list labs, their hosts and addresses")
    status.add_argument("--lab", help="one lab (run id)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    execute = verbs.add_parser(
        "exec", help="run a command in a host", usage="vigil lab exec [--lab ID] HOST -- CMD..."
    )
    execute.add_argument("--lab", help="the lab (run id), when more than one is up")
    execute.add_argument("host", help="host name (server5) or hostname (server5.example.com)")
    execute.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    execute.set_defaults(handler=cmd_exec)

    down = verbs.add_parser("down", help="tear a lab down, leaving nothing behind")
    down.add_argument("--lab", help="the lab (run id), when more than one is up")
    down.add_argument(
        "--all", action="store_true", help="remove every lab left by earlier runs"
    )
    down.add_argument(
        "--force", action="store_true", help="with --all: also labs whose test run still runs"
    )
    down.set_defaults(handler=cmd_down)


def _pick_lab(run_id: str | None) -> Lab:
    if run_id:
        return Lab.load(run_id)
    labs = existing_labs()
    if not labs:
        raise UsageError("no lab is up (start one with 'vigil lab up')")
    if len(labs) > 1:
        raise UsageError(f"several labs are up ({', '.join(labs)}): choose one with --lab")
    return Lab.load(labs[0])


def cmd_up(args: argparse.Namespace) -> int:
    from vigil.lab import resilient

    started = time.monotonic()
    if args.multipath is not None and args.topology != "ecmp":
        raise UsageError("--multipath applies to the ecmp topology only")
    if args.multipath == "resilient" and not resilient.available():
        raise UsageError("--multipath resilient: this kernel has no resilient nexthop "
                         "groups (Linux 5.13+)")
    groups = args.multipath == "resilient" or (args.multipath is None and resilient.available())
    lab = Lab(topology_named(args.topology), detached=True).up()
    if lab.topology.name == "ecmp":
        from vigil.lab import router

        try:
            router.prepare(lab, lab.topology.addresses["vip"], resilient=groups)
            print(f"router: {'resilient nexthop group' if groups else 'hash-threshold'} "
                  "multipath")
        except BaseException:
            lab.down()
            raise
    elapsed = time.monotonic() - started
    print(f"lab {lab.run_id} is up ({lab.topology.name}, {len(lab.hosts)} hosts, {elapsed:.2f} s)")
    _print_lab(lab)
    print(f"\nrun commands with: vigil lab exec {next(iter(lab.hosts))} -- uname -n")
    print("remove it with:    vigil lab down")
    return 0


def _describe(lab: Lab) -> dict[str, Any]:
    return {
        "run_id": lab.run_id,
        "topology": lab.topology.name,
        "addresses": lab.topology.addresses,
        "hosts": [
            {
                "name": host.name,
                "hostname": host.hostname,
                "role": host.spec.role,
                "up": host.is_up(),
                "netns": host.netns,
                "ports": [
                    {"segment": p.segment, "ifname": p.ifname, "mac": p.mac,
                     "addresses": list(p.addresses)}
                    for p in host.spec.ports
                ],
            }
            for host in lab.hosts.values()
        ],
    }


def _print_lab(lab: Lab) -> None:
    for host in lab.hosts.values():
        state = "up" if host.is_up() else "DOWN"
        ports = "  ".join(
            f"{p.ifname}={','.join(a for a in p.addresses if ':' not in a)}"
            for p in host.spec.ports
        )
        print(f"  {host.name:<8} {host.hostname:<22} {state:<5} {ports:<40} {host.spec.role}")
    if lab.topology.addresses:
        named = ", ".join(f"{k} {v}" for k, v in lab.topology.addresses.items())
        print(f"  addresses: {named}")


def cmd_status(args: argparse.Namespace) -> int:
    run_ids = [args.lab] if args.lab else existing_labs()
    labs = [Lab.load(run_id) for run_id in run_ids]
    if args.json:
        json.dump([_describe(lab) for lab in labs], sys.stdout, indent=2)
        print()
        return 0
    if not labs:
        print("no lab is up")
        return 0
    for lab in labs:
        owner = "detached" if lab.detached else f"built by pid {lab._owner[0]}"
        print(f"lab {lab.run_id} ({lab.topology.name}, {owner})")
        _print_lab(lab)
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("lab exec: no command given (vigil lab exec HOST -- CMD...)")
    host = _pick_lab(args.lab).host(args.host)
    if not host.is_up():
        raise UsageError(f"host {host.name} is down")
    return subprocess.call(host._enter_argv(command))


def cmd_down(args: argparse.Namespace) -> int:
    if args.all:
        results = list(sweep(force=args.force))
        for run_id, what in results:
            print(f"lab {run_id}: {what}")
        if not results:
            print("no lab left behind")
        return 0
    lab = _pick_lab(args.lab)
    if lab.owner_alive() and not args.force:
        raise UsageError(
            f"lab {lab.run_id} belongs to running process {lab._owner[0]}; use --force"
        )
    started = time.monotonic()
    lab.down()
    print(f"lab {lab.run_id} removed ({time.monotonic() - started:.2f} s)")
    return 0
