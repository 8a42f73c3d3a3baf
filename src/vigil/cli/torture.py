"""`vigil torture`: a seeded fault campaign over a tutorial setup, in a lab."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli import Subparsers
from vigil.errors import UsageError


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "torture",
        help="run a tutorial setup in a lab under random faults from a seed, and judge it",
        description="Build the lab, start the setup under vigil, drive a client through the "
        "VIP and inject faults from a schedule derived from the seed only (the same seed "
        "replays the same faults); check the invariants after every fault and at the end, "
        "print a timeline and a summary table. Exit status 1 if an invariant was violated.",
    )
    parser.add_argument("--setup", default="heartbeat",
                        choices=["heartbeat", "replicated", "director", "mixed", "heartbeat306"],
                        help="which tutorial setup to run (default: heartbeat; director: the "
                        "LVS-DR pair, whose service fault kills a real server's nginx; mixed: "
                        "the heartbeat pair with Debian's heartbeat 3.0.6 on server5; "
                        "heartbeat306: heartbeat 3.0.6 on both nodes, given the heartbeat "
                        "setup's faults of the mixed kinds, for a side-by-side table)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="how long to inject faults (default: 5)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="as --minutes, in seconds (added to --minutes)")
    parser.add_argument("--faults", type=int, default=None,
                        help="stop after this many faults (for an exact replay)")
    parser.add_argument("--from-fault", type=int, default=0, metavar="N",
                        help="skip the seed's faults before fault N (numbered from 0, as "
                        "the timeline does) and start there on a fresh setup: replays one "
                        "fault of a long run in a minute (with --faults N+1: that fault alone)")
    parser.add_argument("--seed", type=int, default=1, help="the schedule's seed (default: 1)")
    parser.add_argument("--kinds", default=None, metavar="KIND,...",
                        help="inject only these kinds of fault (power-off, kill-daemon, "
                        "kill-service, cut-medium, partition, loss, stall, flap, delay; "
                        "heartbeat: stop-fails; replicated: cut-replication, cut-then-crash, "
                        "disk-error, bad-blocks; mixed: no kill-service or delay, and loss "
                        "(there and in heartbeat306) only when named here; clock-jump, a "
                        "step of one node's wall clock, only when named here)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="write the campaign's record as JSON to FILE")
    parser.set_defaults(handler=cmd_torture)


def cmd_torture(args: argparse.Namespace) -> int:
    seconds = (args.minutes or 0.0) * 60 + (args.seconds or 0.0)
    if args.minutes is None and args.seconds is None:
        seconds = 300.0
    if seconds <= 0:
        raise UsageError("--minutes/--seconds must add up to more than 0")
    if args.faults is not None and args.faults < 1:
        raise UsageError("--faults must be at least 1")
    if args.from_fault < 0:
        raise UsageError("--from-fault must be 0 or more")
    if args.faults is not None and args.faults <= args.from_fault:
        raise UsageError(f"--faults {args.faults} stops before --from-fault {args.from_fault}: "
                         f"give --faults {args.from_fault + 1} or more")
    if args.json is not None and not args.json.parent.is_dir():
        raise UsageError(f"--json: no directory {args.json.parent}")
    from vigil.torture import campaign
    from vigil.torture.schedule import parse_kinds

    try:
        only = parse_kinds(args.setup, args.kinds) if args.kinds is not None else None
    except ValueError as error:
        raise UsageError(f"--kinds: {error}") from None
    record = campaign.run(args.setup, args.seed, seconds, args.faults, json_path=args.json,
                          only=only, first_fault=args.from_fault)
    return 1 if record.violations else 0
