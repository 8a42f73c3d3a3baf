"""debian/: its version follows vigil's, and every document is packaged."""

from __future__ import annotations

from pathlib import Path

import vigil

ROOT = Path(__file__).resolve().parents[2]


def test_the_changelog_version_is_vigils():
    first = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"vigil ({vigil.__version__}) "), first


def test_every_document_and_manual_page_is_installed():
    docs = set((ROOT / "debian" / "vigil.docs").read_text().split())
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= docs
    manpages = set((ROOT / "debian" / "vigil.manpages").read_text().split())
    assert {f"docs/man/{p.name}" for p in (ROOT / "docs" / "man").glob("*.1")} == manpages
