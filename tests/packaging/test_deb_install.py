"""The .deb installs with apt in a clean Debian 12 root, runs there, and leaves only conffiles.

The root is Debian 12 minbase made by mmdebstrap from deb.debian.org, with the
packages vigil depends on downloaded (not installed) into its apt cache; it is
kept as a tarball under VIGIL_ROOT_CACHE (default /var/cache/vigil/debian12-root,
rebuilt when the package list changes: about 40 s and 60 MB from the mirror).
Each test unpacks a fresh copy and runs every command in it through chroot in
new mount, network and PID namespaces: apt installs from the cache offline, /proc
is mounted only inside that namespace, and nothing is left mounted when a
command ends, however it ends.

Debian 12's python3-pyroute2 (0.7.2) is too old for vigil; scripts/deb-pyroute2
packages the pinned release and apt installs it next to vigil. Every other
dependency is Debian 12's own, at the lowest version debian/control accepts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import vigil

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("VIGIL_ROOT_CACHE", "/var/cache/vigil/debian12-root"))
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: not from Debian 12 (too old there): scripts/deb-pyroute2 builds it
OWN_BUILD = "python3-pyroute2"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8",
       "DEBIAN_FRONTEND": "noninteractive"}

pytestmark = [
    pytest.mark.slow,
    # cold: the deb builds and the root from the mirror (about 2.5 min on a loaded machine)
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, namespaces)"),
    pytest.mark.skipif(shutil.which("mmdebstrap") is None or
                       shutil.which("dpkg-buildpackage") is None,
                       reason="mmdebstrap or dpkg-buildpackage missing (scripts/bootstrap)"),
]


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("debs")
    for script in ("deb", "deb-pyroute2"):
        done = subprocess.run([ROOT / "scripts" / script, out], capture_output=True, text=True,
                              timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
    (pyroute2,) = out.glob(f"{OWN_BUILD}_*_all.deb")
    return {"vigil": out / f"vigil_{vigil.__version__}_all.deb", OWN_BUILD: pyroute2}


def depends(deb: Path) -> dict[str, str | None]:
    """The package's Depends: name -> lower bound (first alternative, no arch qualifier)."""
    field = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], check=True, capture_output=True,
                           text=True, timeout=60).stdout
    found: dict[str, str | None] = {}
    for clause in field.split(","):
        match = re.fullmatch(r"\s*([a-z0-9][a-z0-9+.-]*)(?::any)?\s*(?:\(>= ([^)]+)\))?\s*",
                             clause.split("|")[0])
        assert match, clause
        found[match.group(1)] = match.group(2)
    return found


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def root_tarball(debs) -> Path:
    """Debian 12 minbase with vigil's dependencies in its apt cache, made once per package list."""
    packages = sorted(set(depends(debs["vigil"])) - {OWN_BUILD})
    download = ("chroot \"$1\" apt-get install -qq --download-only --no-install-recommends "
                + " ".join(packages))
    command = ["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "--format=tar",
               "--skip=cleanup/apt/lists", "--skip=cleanup/apt/cache",
               f"--customize-hook={download}", SUITE]
    key = hashlib.sha256("\0".join([*command, *MIRRORS]).encode()).hexdigest()[:16]
    tarball = CACHE / f"{SUITE}-minbase-{key}.tar"
    with cache_lock():
        if not tarball.exists():
            for old in CACHE.glob(f"{SUITE}-minbase-*.tar*"):
                old.unlink()
            partial = tarball.with_suffix(".tar.partial")
            done = subprocess.run([*command, partial, *MIRRORS], capture_output=True, text=True,
                                  timeout=900, env={**ENV, "TMPDIR": str(CACHE)})
            assert done.returncode == 0, done.stdout + done.stderr
            partial.rename(tarball)
    return tarball


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


@pytest.fixture
def root(root_tarball, tmp_path) -> Iterator[Path]:
    """A fresh copy of the cached root; removed afterwards, whatever happened."""
    target = tmp_path / "root"
    target.mkdir()
    try:
        subprocess.run(["tar", "-C", target, "-xf", root_tarball], check=True, timeout=300)
        yield target
    finally:
        # commands run in their own mount namespace: nothing of theirs can be mounted here
        leaked = mounts_under(target)
        for point in reversed(leaked):
            subprocess.run(["umount", "--lazy", point], check=False)
        shutil.rmtree(target, ignore_errors=True)
        assert leaked == []


def in_root(root: Path, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command chrooted in `root`, with no network, /proc of its own PID namespace."""
    return subprocess.run(
        ["unshare", "--mount", "--net", "--pid", "--fork", "--propagation", "private",
         "sh", "-c", 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', root, *command],
        capture_output=True, text=True, timeout=timeout, env=ENV)


def vigil_paths(root: Path) -> set[str]:
    """Every path in the root whose name says vigil, outside dpkg's own records."""
    skip = {root / "proc", root / "var/lib/dpkg", root / "root/debs"}
    found = set()
    for directory, names, files in os.walk(root):
        here = Path(directory)
        names[:] = [n for n in names if here / n not in skip]
        for name in names + files:
            if "vigil" in name:
                found.add("/" + str((here / name).relative_to(root)))
    # a directory of vigil's stands for what is below it
    return {p for p in found if not any(p.startswith(f"{q}/") for q in found)}


def test_apt_installs_the_deb_on_debian_12_where_it_runs_and_dpkg_removes_it(debs, root):
    (root / "root/debs").mkdir()
    for deb in debs.values():
        shutil.copy(deb, root / "root/debs")
    vigil_deb = f"/root/debs/{debs['vigil'].name}"
    pyroute2_deb = f"/root/debs/{debs[OWN_BUILD].name}"

    # Debian 12 alone cannot satisfy one dependency: pyroute2
    alone = in_root(root, "apt-get", "install", "-s", "--no-install-recommends", vigil_deb)
    unmet = [line for line in alone.stdout.splitlines() if "Depends:" in line]
    assert alone.returncode != 0 and unmet and all(OWN_BUILD in line for line in unmet), \
        alone.stdout + alone.stderr

    installed = in_root(root, "apt-get", "install", "-y", "--no-install-recommends",
                        pyroute2_deb, vigil_deb)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # It runs on the lowest versions its Depends accept: they are what Debian 12 installed
    bounds = {name: bound for name, bound in depends(debs["vigil"]).items()
              if name.startswith("python3-") and bound is not None}
    versions = dict(line.split("\t") for line in in_root(
        root, "dpkg-query", "-W", "-f", "${Package}\t${Version}\n", *bounds).stdout.splitlines())
    # (the upstream part: Debian's 0.17.0+ds1-2+b2 is uvloop 0.17.0)
    assert {name: re.split(r"[-+~]", versions[name])[0] for name in bounds} == bounds, versions

    version = in_root(root, "vigil", "--version")
    assert version.returncode == 0 and version.stdout.startswith(f"vigil {vigil.__version__}"), \
        version.stdout + version.stderr

    # vigil check on the tutorial's files, as a sysadmin copies them into /etc/ha.d
    examples = "/usr/share/doc/vigil/examples/tutorial"
    setup = in_root(root, "sh", "-ec", f"""
        mkdir -p /tmp/ha.d/resource.d
        cp {examples}/ha.cf {examples}/authkeys {examples}/ldirectord.cf /tmp/ha.d/
        cp {examples}/haresources.mysqld /tmp/ha.d/haresources
        chmod 600 /tmp/ha.d/authkeys
        install -m 755 /usr/lib/python3/dist-packages/vigil/data/init.d/mysqld /tmp/ha.d/resource.d/
    """)
    assert setup.returncode == 0, setup.stderr
    check = in_root(root, "vigil", "check", "--dir", "/tmp/ha.d", "--host", "server5.example.com",
                    "--drbd-conf", f"{examples}/drbd-mysqldata.res")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1] == \
        "vigil check: 0 errors, 2 warnings (checked /tmp/ha.d as server5.example.com)"

    # every module imports with Debian 12's libraries (but vigil.__main__, which runs the
    # command, and vigil.testing, test support that needs the test extras, pytest and
    # websocket-client, which the package does not depend on)
    imports = in_root(root, "python3", "-c", (
        "import importlib, pkgutil, vigil\n"
        "names = [m.name for m in pkgutil.walk_packages(vigil.__path__, 'vigil.')\n"
        "         if not m.name.startswith('vigil.testing.') and m.name != 'vigil.__main__']\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names))"))
    assert imports.returncode == 0 and int(imports.stdout) > 100, imports.stdout + imports.stderr

    listed = set(in_root(root, "dpkg", "-L", "vigil").stdout.splitlines())
    conffiles = {line.split()[0] for line in in_root(
        root, "dpkg-query", "-W", "-f", "${Conffiles}", "vigil").stdout.splitlines() if line}
    assert "/usr/bin/vigil" in listed and vigil_paths(root)

    removed = in_root(root, "dpkg", "-r", "vigil")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    left = {p for p in listed if os.path.lexists(root / p.lstrip("/"))
            and not (root / p.lstrip("/")).is_dir()}
    assert left == conffiles
    # nothing else of vigil's either (byte code, caches), but its conffiles and the record
    # dpkg's systemd helper keeps of its units until the purge (as for every package with units)
    units = {p.rsplit("/", 1)[1] for p in listed if p.startswith("/lib/systemd/system/")}
    leftover = vigil_paths(root) - conffiles
    helper = {p for p in leftover
              if (m := re.fullmatch(r"/var/lib/systemd/deb-systemd-helper-(?:enabled|masked)/"
                                    r"(.+?)(?:\.dsh-also)?", p)) and m.group(1) in units}
    assert leftover == helper, sorted(leftover)
    assert all(p.startswith("/etc/") for p in conffiles)

    purged = in_root(root, "dpkg", "-P", "vigil")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert vigil_paths(root) == set()
    status = in_root(root, "dpkg-query", "-W", "-f", "${db:Status-Status}", "vigil")
    assert status.stdout in ("", "not-installed")
