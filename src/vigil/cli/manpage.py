"""Manual pages for `vigil` and `vigil-cl_status`, written from the argparse help.

A packaged command needs a man page, and one written by hand would drift from
the options. The pages are rendered from the same parser `vigil --help` prints
(every command and sub-command, at a fixed width so the output does not depend
on the terminal) and kept in docs/man; a unit test says when they are stale.
Run: python -m vigil.cli.manpage docs/man
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from vigil import __version__
from vigil.cli.main import build_parser

WIDTH = "80"
SUMMARY = ("high availability for Linux: heartbeat pairs, replicated volumes and "
           "LVS-style load balancing")
CL_STATUS_HELP = """\
vigil-cl_status answers heartbeat's cl_status sub-commands, with heartbeat
3.0.6's output and exit codes, from the running vigil heartbeat (its control
socket) and /etc/ha.d/ha.cf. Scripts written for heartbeat's cl_status keep
working; install it under that name if they call it so.

Usage: vigil-cl_status <sub-command> [<options>] [<parameters>]
Sub-commands: clientstatus, hblinkstatus, hbparameter, hbstatus, listhblinks,
listnodes, nodesite, nodestatus, nodetype, nodeweight, rscstatus
"""


def escape(text: str) -> str:
    """Text as roff prints it literally: backslashes, minus signs, leading dots."""
    lines = []
    for line in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def literal(text: str) -> str:
    return f".nf\n{escape(text.rstrip())}\n.fi"


def commands(parser: argparse.ArgumentParser,
             path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every visible sub-command below `parser`, depth first, as (`vigil a b`, parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                yield f"{path} {choice.dest}", sub
                yield from commands(sub, f"{path} {choice.dest}")


def header(name: str, summary: str) -> str:
    return (f'.TH {name.upper()} 1 "" "vigil {__version__}" "User Commands"\n'
            f".SH NAME\n{escape(name)} \\- {escape(summary)}\n")


def render_vigil() -> str:
    parser = build_parser()
    parts = [header("vigil", SUMMARY),
             ".SH SYNOPSIS\n.B vigil\n[\\fB\\-\\-version\\fR] [\\fB\\-\\-debug\\fR] "
             "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n",
             f".SH DESCRIPTION\n{literal(parser.format_help())}\n", ".SH COMMANDS\n"]
    for path, sub in commands(parser, "vigil"):
        parts.append(f'.SS "{escape(path)}"\n{literal(sub.format_help())}\n')
    parts.append(".SH SEE ALSO\n\\fBvigil\\-cl_status\\fR(1), "
                 "/usr/share/doc/vigil/ (the tutorial, configuration and examples)\n")
    return "".join(parts)


def render_cl_status() -> str:
    return "".join([
        header("vigil-cl_status", "heartbeat's cl_status, answered by vigil heartbeat"),
        ".SH SYNOPSIS\n.B vigil\\-cl_status\n\\fISUB\\-COMMAND\\fR [\\fIOPTIONS\\fR] "
        "[\\fIPARAMETERS\\fR]\n",
        f".SH DESCRIPTION\n{literal(CL_STATUS_HELP)}\n",
        ".SH SEE ALSO\n\\fBvigil\\fR(1) (vigil status)\n"])


def pages() -> dict[str, str]:
    """File name to page text, at a fixed width whatever the terminal."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        return {"vigil.1": render_vigil(), "vigil-cl_status.1": render_cl_status()}
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "docs/man")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (directory / name).write_text(text)
        print(f"wrote {directory / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
