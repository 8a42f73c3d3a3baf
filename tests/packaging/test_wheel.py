"""The built wheel works on its own: installed into a fresh venv, away from the checkout.

A sysadmin's vigil has no source tree beside it; whatever it reads at run time must
travel inside the wheel (package data), and the entry points must run from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "src" / "vigil" / "lab" / "seed_configs"

pytestmark = pytest.mark.slow


def run(args: list[str | Path], cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # no PYTHONPATH: only what is installed in the venv may be imported
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the tree, so the checkout gets no build/ directory."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    done = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist",
                tree], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("vigil-*.whl")
    return wheel


def tutorial_dir(tmp_path: Path, mysqld_script: str) -> Path:
    """The tutorial's /etc/ha.d for its MariaDB pair, with vigil's mysqld script."""
    d = tmp_path / "ha.d"
    (d / "resource.d").mkdir(parents=True)
    for name in ("ha.cf", "authkeys", "ldirectord.cf"):
        shutil.copy(SEED / name, d / name)
    os.chmod(d / "authkeys", 0o600)
    shutil.copy(SEED / "haresources.mysqld", d / "haresources")
    (d / "resource.d" / "mysqld").write_text(mysqld_script)
    os.chmod(d / "resource.d" / "mysqld", 0o755)
    return d


def test_the_wheel_installs_and_runs_without_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", venv], cwd=work).returncode == 0
    done = run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel],
               cwd=work, timeout=300)
    assert done.returncode == 0, done.stderr

    where = run([venv / "bin" / "python", "-c", "import vigil; print(vigil.__file__)"], cwd=work)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    version = run([venv / "bin" / "vigil", "--version"], cwd=work)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("vigil ") and "heartbeat 3.0.6" in version.stdout

    # the demo's LSB script is package data, read back from the installed wheel
    script = run([venv / "bin" / "python", "-c",
                  "from vigil.data import init_script; print(init_script('mysqld'), end='')"],
                 cwd=work)
    assert script.returncode == 0 and script.stdout.startswith("#!/bin/sh"), script.stderr

    d = tutorial_dir(tmp_path, script.stdout)
    check = run([venv / "bin" / "vigil", "check", "--dir", d, "--host", "server5.example.com",
                 "--drbd-conf", SEED / "drbd-mysqldata.res"], cwd=work)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "warning: crc authenticates nothing" in check.stdout
    assert check.stdout.splitlines()[-1] == (
        f"vigil check: 0 errors, 2 warnings (checked {d} as server5.example.com)")

    status = run([venv / "bin" / "vigil-cl_status", "--help"], cwd=work)
    assert status.returncode == 0, status.stderr
