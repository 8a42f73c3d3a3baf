"""`vigil demo`: the seed's whole setup on this machine, with a timeline."""

from __future__ import annotations

import argparse

from vigil.cli import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the tutorial's setups on this machine in a lab, with a timeline",
        description="Build the seed's machines as lab hosts and run its scenes.",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the lab up afterwards (vigil lab exec/down)"
    )
    parser.add_argument(
        "--one-by-one", action="store_true",
        help="play the scenes one after the other instead of side by side (slower; "
        "each scene has the machine to itself)",
    )
    parser.add_argument(
        "scenes", nargs="*", metavar="SCENE",
        help="play only the scenes whose title contains one of these words"
        " (heartbeat, replicated, director)",
    )
    parser.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from vigil.demo import runner

    return runner.run(keep=args.keep, only=args.scenes or None,
                      one_by_one=args.one_by_one)
