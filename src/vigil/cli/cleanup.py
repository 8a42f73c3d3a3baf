"""`vigil cleanup`: after fixing what made a group's stop (or start) fail, let it go on.

A group whose stop failed stays claimed by its node, so that the peer never
starts what may still run there (heartbeat would have rebooted the node). Once
the operator has fixed the cause, cleanup tries the group's stop again: only a
stop that succeeds releases the group, which the peer (or this node) then
starts as it would any released group. A group whose start failed (already
stopped) is released at once. Pacemaker's `crm resource cleanup`.
"""

from __future__ import annotations

import argparse

from vigil.cli import Subparsers
from vigil.control import DEFAULT_SOCKET


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "cleanup", help="retry the stop of a group whose stop failed, after fixing it "
                        "(crm resource cleanup)",
        description="After fixing what made a group's stop fail on this node: the running "
                    "daemon tries the stop again, and a stop that succeeds releases the "
                    "group, which then starts where it belongs (the peer, as a rule). A group "
                    "whose start failed here is released at once.")
    parser.add_argument("group", nargs="?", default="all",
                        help="the group's key, as vigil status shows it (default: every "
                             "group that needs it)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help="control socket (default %(default)s)")
    parser.set_defaults(handler=cmd_cleanup)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from vigil.control.client import request

    answer = request(args.socket, "cleanup", group=args.group)
    print(answer.get("reason") or "cleanup requested")
    return 0
