"""`vigil standby` and `vigil takeover`: move groups by hand (hb_standby, hb_takeover).

One module: both ask the running daemon the same way and differ only in the
direction the groups move.
"""

from __future__ import annotations

import argparse

from vigil.cli import Subparsers
from vigil.control import DEFAULT_SOCKET

#: command -> (help, description)
VERBS = {
    "standby": (
        "hand this node's groups to the peer (hb_standby)",
        "Ask the running daemon to hand groups to the peer: local (this node's own), "
        "foreign (the peer's, held here), all (default). The groups are stopped here "
        "first, then started there.",
    ),
    "takeover": (
        "take groups over from the peer (hb_takeover)",
        "Ask the running daemon to take groups from the peer: local (this node's own), "
        "foreign (the peer's), all (default). The peer stops them first, then they start "
        "here.",
    ),
}


def register(subparsers: Subparsers) -> None:
    for verb, (summary, description) in VERBS.items():
        parser = subparsers.add_parser(verb, help=summary, description=description)
        parser.add_argument("which", nargs="?", default="all",
                            choices=["local", "foreign", "all", "failback"],
                            help="which groups (failback = foreign; default all)")
        parser.add_argument("--socket", default=DEFAULT_SOCKET,
                            help="control socket (default %(default)s)")
        parser.set_defaults(handler=cmd_move, verb=verb)


def cmd_move(args: argparse.Namespace) -> int:
    from vigil.control.client import request

    answer = request(args.socket, args.verb, which=args.which)
    print(answer.get("reason") or f"{args.verb} requested")
    return 0
