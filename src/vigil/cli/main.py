"""`vigil`: the entry point. Parses the command line and turns errors into one clear line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from vigil import COMPATIBILITY, __version__
from vigil.errors import VigilError

#: Command word -> the module that registers it, in the order `vigil --help`
#: lists them. Each module has `register(subparsers)`, which adds its parsers and
#: sets `handler`. A command line naming one command imports that module alone:
#: scripts and agents call vigil often, and the volume command's imports (FUSE,
#: trio) would otherwise slow every `vigil lvs` and `vigil status`.
COMMANDS = {
    "heartbeat": "vigil.cli.heartbeat",
    "status": "vigil.cli.status",
    "standby": "vigil.cli.move",
    "takeover": "vigil.cli.move",
    "cleanup": "vigil.cli.cleanup",
    "check": "vigil.cli.check",
    "config": "vigil.cli.config",
    "demo": "vigil.cli.demo",
    "torture": "vigil.cli.torture",
    "director": "vigil.cli.director",
    "lvs": "vigil.cli.lvs",
    "lab": "vigil.cli.lab",
    "realserver": "vigil.cli.realserver",
    "resource": "vigil.cli.resource",
    "volume": "vigil.cli.volume",
    "units": "vigil.cli.units",
    "export": "vigil.cli.export",
    "ocf": "vigil.cli.ocf",
}

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


def command_word(argv: Sequence[str]) -> str | None:
    """The command a command line names (the first word that is not an option:
    vigil's own options take no value), or None."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (for a known `command`) one holding that command alone."""
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
    every_module = list(dict.fromkeys(COMMANDS.values()))
    for module_name in [COMMANDS[command]] if command in COMMANDS else every_module:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = command_word(words)
    parser = build_parser(command)
    if command == "volume":
        from vigil.cli.volume import backend_options_after_verb

        words = backend_options_after_verb(words)
    args = parser.parse_args(words)
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
