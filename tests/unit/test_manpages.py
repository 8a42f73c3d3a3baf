"""docs/man: the manual pages the Debian package installs say what the parser says."""

from __future__ import annotations

from pathlib import Path

from vigil.cli.main import build_parser
from vigil.cli.manpage import commands, escape, pages

MAN = Path(__file__).resolve().parents[2] / "docs" / "man"


def test_the_pages_in_docs_man_are_current():
    for name, text in pages().items():
        stale = "stale: run .venv/bin/python -m vigil.cli.manpage docs/man"
        assert (MAN / name).read_text() == text, f"{name} {stale}"


def test_every_visible_command_has_its_section():
    page = pages()["vigil.1"]
    paths = [path for path, _ in commands(build_parser(), "vigil")]
    assert "vigil check" in paths and "vigil volume up" in paths
    for path in paths:
        assert f'.SS "{escape(path)}"' in page


def test_roff_control_characters_are_escaped():
    assert escape(".hidden\n'quoted\na-b c\\d") == "\\&.hidden\n\\&'quoted\na\\-b c\\ed"
