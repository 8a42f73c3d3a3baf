"""`vigil takeover`: take groups over from the peer (hb_takeover)."""

from __future__ import annotations

import argparse
from typing import Any

from vigil.control import DEFAULT_SOCKET


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "takeover",
        help="take groups over from the peer (hb_takeover)",
        description="Ask the running daemon to take groups from the peer: local (this "
        "node's own), foreign (the peer's), all (default). The peer stops them first, "
        "then they start here.",
    )
    parser.add_argument("which", nargs="?", default="all",
                        choices=["local", "foreign", "all", "failback"],
                        help="which groups (failback = foreign; default all)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help="control socket (default %(default)s)")
    parser.set_defaults(handler=cmd_takeover)


def cmd_takeover(args: argparse.Namespace) -> int:
    from vigil.control.client import request

    answer = request(args.socket, "takeover", which=args.which)
    print(answer.get("reason") or "takeover requested")
    return 0
