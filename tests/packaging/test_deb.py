"""The Debian package builds with Debian's tooling and carries the CLI, units and docs.

scripts/deb builds it from a temporary copy of the tree (a few seconds); the
build tools and lintian come from scripts/apt-packages, like everything else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vigil

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None,
                       reason="not a Debian machine (scripts/bootstrap installs the tools)"),
]

EXPECTED = [
    "./usr/bin/vigil",
    "./usr/bin/vigil-cl_status",
    "./usr/lib/python3/dist-packages/vigil/cli/main.py",
    "./usr/lib/python3/dist-packages/vigil/data/init.d/mysqld",
    "./usr/lib/python3/dist-packages/vigil/lab/seed_configs/ha.cf",
    "./lib/systemd/system/vigil-volumes.service",
    "./lib/systemd/system/vigil-heartbeat.service",
    "./lib/systemd/system/vigil-director@.service",
    "./lib/systemd/system/vigil-director-standby@.service",
    "./usr/share/man/man1/vigil.1.gz",
    "./usr/share/man/man1/vigil-cl_status.1.gz",
    "./usr/share/doc/vigil/README.md.gz",
    "./usr/share/doc/vigil/tutorial.md.gz",
    "./usr/share/doc/vigil/copyright",
    "./usr/share/doc/vigil/examples/tutorial/ha.cf",
    "./usr/share/doc/vigil/examples/tutorial/haresources.mysqld",
    "./usr/share/doc/vigil/examples/tutorial/ldirectord.cf",
    "./usr/share/doc/vigil/examples/grafana/vigil.json",
    "./usr/share/doc/vigil/examples/init.d/vigil-realserver",
    "./usr/lib/ocf/resource.d/vigil/director",
    "./usr/lib/ocf/resource.d/vigil/realserver",
    "./usr/lib/ocf/resource.d/vigil/volume",
]


def dpkg_deb(*args: str | Path) -> str:
    return subprocess.run(["dpkg-deb", *map(str, args)], check=True, capture_output=True,
                          text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    done = subprocess.run([ROOT / "scripts" / "deb", out], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_deb_carries_the_cli_units_manual_and_examples(built):
    deb = built / f"vigil_{vigil.__version__}_all.deb"
    names = {line.split()[-1] for line in dpkg_deb("-c", deb).splitlines()}
    assert [name for name in EXPECTED if name not in names] == []
    # Pacemaker runs the OCF agents: they must stay executable
    modes = {line.split()[-1]: line.split()[0] for line in dpkg_deb("-c", deb).splitlines()}
    assert {modes[f"./usr/lib/ocf/resource.d/vigil/{a}"] for a in ("director", "volume")} \
        == {"-rwxr-xr-x"}
    # /etc/ha.d stays the sysadmin's: the examples are docs, nothing is a conffile
    assert not [name for name in names if name.startswith("./etc/")]

    depends = dpkg_deb("-f", deb, "Depends")
    for package in ("python3-pyroute2", "python3-prometheus-client", "python3-pyfuse3"):
        assert package in depends


@pytest.fixture(scope="module")
def unpacked(built, tmp_path_factory) -> Path:
    """The package's files and control scripts, as dpkg would lay them out."""
    root = tmp_path_factory.mktemp("root")
    dpkg_deb("-R", built / f"vigil_{vigil.__version__}_all.deb", root)
    return root


def test_the_units_name_usr_bin_vigil_and_nothing_starts_on_install(unpacked):
    unit = (unpacked / "lib/systemd/system/vigil-heartbeat.service").read_text()
    assert "ExecStart=/usr/bin/vigil heartbeat --foreground" in unit
    postinst = (unpacked / "DEBIAN/postinst").read_text()
    assert "deb-systemd-invoke" not in postinst  # no start, no restart on upgrade
    assert "was-enabled" in postinst  # enabled only if the sysadmin had enabled it


def test_the_packaged_program_checks_the_packaged_examples(unpacked, tmp_path):
    """/usr/bin/vigil from the package, on its own examples and init script.

    The packaged code runs here on this venv's pinned libraries, from the package's
    own directory and nowhere near the checkout (test_deb_install.py runs it on
    Debian 12's own, installed by apt in a clean root).
    """
    site = unpacked / "usr/lib/python3/dist-packages"
    env = {**os.environ, "PYTHONPATH": str(site)}
    examples = unpacked / "usr/share/doc/vigil/examples/tutorial"
    d = tmp_path / "ha.d"
    (d / "resource.d").mkdir(parents=True)
    for name in ("ha.cf", "authkeys", "ldirectord.cf"):
        shutil.copy(examples / name, d / name)
    os.chmod(d / "authkeys", 0o600)
    shutil.copy(examples / "haresources.mysqld", d / "haresources")
    shutil.copy(site / "vigil/data/init.d/mysqld", d / "resource.d/mysqld")
    os.chmod(d / "resource.d/mysqld", 0o755)

    def vigil_(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, unpacked / "usr/bin/vigil", *map(str, args)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    where = subprocess.run([sys.executable, "-c", "import vigil; print(vigil.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr
    version = vigil_("--version")
    assert version.returncode == 0 and version.stdout.startswith(f"vigil {vigil.__version__}")
    check = vigil_("check", "--dir", d, "--host", "server5.example.com",
                   "--drbd-conf", examples / "drbd-mysqldata.res")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1] == (
        f"vigil check: 0 errors, 2 warnings (checked {d} as server5.example.com)")


@pytest.mark.skipif(shutil.which("lintian") is None, reason="no lintian")
def test_lintian_has_no_error_or_warning(built):
    (changes,) = built.glob("vigil_*.changes")
    done = subprocess.run(["lintian", changes], capture_output=True, text=True, timeout=300)
    tags = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert done.returncode == 0 and tags == [], done.stdout + done.stderr
