"""debian/: its version follows vigil's, and every document is packaged."""

from __future__ import annotations

import re
import tomllib
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


#: pyproject's name -> Debian's package, and how Debian spells the version
DEBIAN_NAMES = {"pyroute2": "python3-pyroute2", "PyMySQL": "python3-pymysql",
                "ldap3": "python3-ldap3", "uvloop": "python3-uvloop", "regex": "python3-regex",
                "pyfuse3": "python3-pyfuse3", "prometheus-client": "python3-prometheus-client"}


def debian_version(name: str, version: str) -> str:
    # Debian numbers the regex module 0.1.YYYYMMDD (its upstream's date versions)
    if name == "regex":
        year, month, day = version.split(".")
        return f"0.1.{year}{int(month):02d}{int(day):02d}"
    return version


#: Debian 12's versions, lower than pyproject's pins, that vigil runs on: the package
#: depends on them (tests/packaging/test_deb_install.py installs it on exactly these).
#: Not pyroute2: Debian 12's 0.7.2 has no AsyncIPRoute (the heartbeat's IPaddr,
#: IPsrcaddr and SendArp agents) and no IPVS (the director's IPVS backend, `vigil lvs`).
DEBIAN_12 = {"python3-ldap3": "2.9.1", "python3-prometheus-client": "0.16.0",
             "python3-pyfuse3": "3.2.1", "python3-pymysql": "1.0.2",
             "python3-regex": "0.1.20221031", "python3-uvloop": "0.17.0"}


def test_the_packages_python_depends_are_debian_12s_versions_or_pyprojects_pins():
    pins = dict(d.split("==") for d in
                tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    control = (ROOT / "debian" / "control").read_text()
    depends = {m.group(1): m.group(2)
               for m in re.finditer(r"^ (python3-[\w-]+) \(>= ([^)]+)\),$", control, re.M)}
    assert depends == {DEBIAN_NAMES[name]: DEBIAN_12.get(DEBIAN_NAMES[name],
                                                          debian_version(name, version))
                       for name, version in pins.items()}
