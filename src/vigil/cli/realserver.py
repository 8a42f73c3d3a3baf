"""`vigil realserver`: the seed's real-server script, done right (LSB exit codes)."""

from __future__ import annotations

import argparse
import json

from vigil.cli import Subparsers
from vigil.realserver import RealServer

#: LSB status codes: 0 running, 3 not running.
LSB_NOT_RUNNING = 3


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "realserver",
        help="set up an LVS-DR real server: VIP on lo, ARP kept quiet (realserver.sh)",
        description=(
            "Put the VIP on lo as a host address and set arp_ignore=1, arp_announce=2 on "
            "'all' and on each real interface; 'stop' gives back the values found before. "
            "Exit codes follow LSB: status is 0 when set up, 3 when not."
        ),
    )
    parser.add_argument("action", choices=["start", "stop", "restart", "status"])
    parser.add_argument("--vip", required=True, action="append",
                        help="virtual IP (IPv4 or IPv6); repeat for several")
    parser.add_argument("--dev", action="append",
                        help="set ARP options on this interface only (repeatable); "
                        "default: every interface but lo")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.set_defaults(handler=cmd_realserver)


def cmd_realserver(args: argparse.Namespace) -> int:
    servers = [RealServer(vip, devices=args.dev) for vip in args.vip]
    if args.action in ("stop", "restart"):
        for server in servers:
            _report(server, "stopped", server.stop())
    if args.action in ("start", "restart"):
        for server in servers:
            _report(server, "started", server.start())
    if args.action == "status":
        statuses = [server.status() for server in servers]
        if args.json:
            print(json.dumps([s.to_json() for s in statuses], indent=2))
        else:
            for status in statuses:
                state = "running" if status.running else "not running"
                where = "on lo" if status.vip_on_loopback else "not on lo"
                print(f"real server for {status.vip}: {state} (VIP {where})")
                for name, value in sorted(status.sysctls.items()):
                    print(f"  net.ipv4.conf.{name.replace('/', '.')} = {value}")
        return 0 if all(s.running for s in statuses) else LSB_NOT_RUNNING
    return 0


def _report(server: RealServer, verb: str, changes: list[str]) -> None:
    detail = "; ".join(changes) if changes else "nothing to change"
    print(f"real server for {server.vip} {verb}: {detail}")
