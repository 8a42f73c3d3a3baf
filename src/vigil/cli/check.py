"""`vigil check`: validate a configuration directory as a set, the way a start would."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

from vigil.cli import Subparsers
from vigil.cluster.loader import CheckReport, ConfigPaths, HostFacts, check
from vigil.config.base import Diagnostic, Severity


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate ha.cf, authkeys, haresources, ldirectord.cf, DRBD files and vigil.cf",
        description=(
            "Read heartbeat's, ldirectord's and DRBD's files (and vigil.cf) and report every "
            "problem a start would meet, as FILE:LINE:COL: error|warning|note: MESSAGE with "
            "the line and a caret. Exit status: 0 clean (warnings allowed), 1 errors, "
            "2 a required file could not be read."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "'note' lines list directives vigil accepts and ignores (see docs/config.md).\n"
            "Checks that need this machine (interfaces, own addresses) run only when --host\n"
            "is this machine."
        ),
    )
    parser.add_argument("--dir", default="/etc/ha.d", metavar="DIR",
                        help="heartbeat's configuration directory (default: /etc/ha.d)")
    parser.add_argument("--drbd-conf", default="/etc/drbd.conf", metavar="FILE",
                        help="DRBD's top configuration file (default: /etc/drbd.conf)")
    parser.add_argument("--host", metavar="NAME",
                        help="check as this node (default: this machine, `uname -n`)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="do not list ignored directives (notes)")
    parser.add_argument("--no-fence-monitor", action="store_true",
                        help="do not ask vigil.cf's fence agents `monitor` (they are asked "
                             "when checking as this machine)")
    parser.set_defaults(handler=cmd_check)


def _ordered(diagnostics: tuple[Diagnostic, ...]) -> list[Diagnostic]:
    """Grouped by file (in the order files were read), then by line."""
    order: dict[str, int] = {}
    for d in diagnostics:
        order.setdefault(d.location.path, len(order))
    return sorted(diagnostics, key=lambda d: (order[d.location.path], d.location.line,
                                              d.location.column))


def print_report(report: CheckReport, host: str, quiet: bool = False,
                 out: Any = None) -> None:
    out = out or sys.stdout
    for d in _ordered(report.diagnostics):
        if quiet and d.severity is Severity.NOTE:
            continue
        print(d.format(), file=out)
    errors, warnings = len(report.errors), len(report.warnings)
    summary = (f"{errors} error{'s' if errors != 1 else ''}, "
               f"{warnings} warning{'s' if warnings != 1 else ''}")
    if report.unreadable:
        summary += f"; could not read {', '.join(report.unreadable)}"
    print(f"vigil check: {summary} (checked {report.config.paths.ha_dir} as {host})", file=out)


#: how long `vigil check` waits for a fence agent's monitor
FENCE_MONITOR_TIMEOUT = 30.0


def _ask_fence_agent(agent: str, params: Mapping[str, str]) -> str | None:
    from vigil.ha.fencing import fence_monitor

    return asyncio.run(fence_monitor(agent, params, FENCE_MONITOR_TIMEOUT))


def cmd_check(args: argparse.Namespace) -> int:
    facts = HostFacts.this_host(args.host)
    if facts.interfaces is not None and not args.no_fence_monitor:  # checking this machine
        facts = dataclasses.replace(facts, fence_monitor=_ask_fence_agent)
    report = check(ConfigPaths(args.dir, args.drbd_conf), facts)
    print_report(report, facts.hostname, args.quiet)
    return report.exit_code
