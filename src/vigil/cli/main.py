"""`vigil`: the entry point. Parses the command line and turns errors into one clear line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from vigil import COMPATIBILITY, __version__
from vigil.cli.volume import backend_options_after_verb
from vigil.errors import VigilError

#: Subcommand modules, in the order `vigil --help` lists them. Each has
#: `register(subparsers)`, which adds its parser and sets `handler`.
COMMANDS = [
    "vigil.cli.heartbeat",
    "vigil.cli.status",
    "vigil.cli.move",
    "vigil.cli.check",
    "vigil.cli.config",
    "vigil.cli.demo",
    "vigil.cli.torture",
    "vigil.cli.director",
    "vigil.cli.lvs",
    "vigil.cli.lab",
    "vigil.cli.realserver",
    "vigil.cli.resource",
    "vigil.cli.volume",
    "vigil.cli.units",
    "vigil.cli.export",
    "vigil.cli.ocf",
]

DESCRIPTION = """\
vigil keeps services up on a pair of Linux machines, the way Heartbeat, DRBD
and LVS/ldirectord do, reading their configuration files unchanged
(/etc/ha.d/ha.cf, authkeys, haresources, ldirectord.cf, DRBD .res files).
"""

EPILOG = """\
Run 'vigil COMMAND --help' for the options of one command.
Configuration is read from /etc/ha.d unless --dir says otherwise.
"""


def version_text() -> str:
    speaks = "; ".join(f"{tool} {what}" for tool, what in COMPATIBILITY.items())
    return f"vigil {__version__}\nspeaks: {speaks}\npython {sys.version.split()[0]}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when vigil itself fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(backend_options_after_verb(
        list(sys.argv[1:] if argv is None else argv)))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.debug or os.environ.get("VIGIL_DEBUG"):
            traceback.print_exc()
        print(
            f"vigil: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 70
