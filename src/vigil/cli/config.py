"""`vigil config show`: the configuration as vigil understands it, defaults filled in."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vigil.cli import Subparsers
from vigil.cli.check import print_report
from vigil.cluster.loader import ConfigPaths, HostFacts, check
from vigil.config.base import to_jsonable


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the resolved configuration (every default filled in)",
        description="Show the configuration vigil would run with.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = verbs.add_parser(
        "show", help="print the resolved model as text or JSON",
        description=("Print every file's model with defaults filled in (secrets masked). "
                     "Fails, listing the errors, when the configuration has any."))
    show.add_argument("--dir", default="/etc/ha.d", metavar="DIR",
                      help="heartbeat's configuration directory (default: /etc/ha.d)")
    show.add_argument("--drbd-conf", default="/etc/drbd.conf", metavar="FILE",
                      help="DRBD's top configuration file (default: /etc/drbd.conf)")
    show.add_argument("--host", metavar="NAME", help="as this node (default: this machine)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--show-secrets", action="store_true",
                      help="print authkeys secrets and passwords instead of ********")
    show.set_defaults(handler=cmd_show)


def _text(value: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_text(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                inner = _text(item, indent + 1)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)


def cmd_show(args: argparse.Namespace) -> int:
    facts = HostFacts.this_host(args.host)
    report = check(ConfigPaths(args.dir, args.drbd_conf), facts)
    if report.errors:
        print_report(report, facts.hostname, quiet=True, out=sys.stderr)
        return report.exit_code
    data = to_jsonable(report.config, reveal_secrets=args.show_secrets)
    if args.json:
        json.dump(data, sys.stdout, indent=2, sort_keys=False)
        print()
    else:
        print("\n".join(_text(data)))
    return 0
