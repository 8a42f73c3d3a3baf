"""`vigil standby`: hand this node's groups to the peer (hb_standby)."""

from __future__ import annotations

import argparse
from typing import Any

from vigil.control import DEFAULT_SOCKET


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "standby",
        help="hand this node's groups to the peer (hb_standby)",
        description="Ask the running daemon to hand groups to the peer: local (this "
        "node's own), foreign (the peer's, held here), all (default). The groups are "
        "stopped here first, then started there.",
    )
    parser.add_argument("which", nargs="?", default="all",
                        choices=["local", "foreign", "all", "failback"],
                        help="which groups (failback = foreign; default all)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help="control socket (default %(default)s)")
    parser.set_defaults(handler=cmd_standby)


def cmd_standby(args: argparse.Namespace) -> int:
    from vigil.control.client import request

    answer = request(args.socket, "standby", which=args.which)
    print(answer.get("reason") or "standby requested")
    return 0
