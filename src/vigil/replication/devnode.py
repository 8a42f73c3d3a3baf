"""The configured device name (`/dev/drbd1`) as a block-device node, per host.

On a real machine the node goes into /dev like udev would put it. A vigil
lab host (or any container) that shares the machine's devtmpfs must not: two
hosts would fight over one /dev/drbd1 and a crash would leave it behind. So
when this process's mount namespace is not the machine's but its /dev is the
machine's devtmpfs, `private_dev` first covers /dev, in this namespace only,
with an overlay whose lower layer is the machine's /dev and whose upper layer
lives in /run/vigil/dev (a per-host tmpfs): the host sees every machine device
plus its own nodes, the machine sees none of them, and everything vanishes
with the host's mount namespace. Submounts (/dev/pts, /dev/shm, /dev/mqueue)
are bound back on top.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path

PRIVATE_ROOT = Path("/run/vigil/dev")
OVERLAY_SOURCE = "vigil-dev"


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, source) from this namespace's mountinfo."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        fstype, source = right.split()[:2]
        out.append((fields[4].replace("\\040", " "), fstype, source))
    return out


def dev_is_private() -> bool:
    return any(point == "/dev" and source == OVERLAY_SOURCE for point, _, source in _mounts())


def _kthreadd_visible() -> bool:
    """kthreadd (PID 2) sits in the machine's initial namespaces, and unlike PID 1
    (which may be protected) its /proc entries are readable."""
    try:
        return Path("/proc/2/comm").read_text().strip() == "kthreadd"
    except OSError:
        return False


def needs_private_dev() -> bool:
    """This process shares the machine's devtmpfs but not its mount namespace.

    With kernel threads visible in /proc, compare mount namespaces with kthreadd's.
    Without (a PID namespace with its own /proc, as in a vigil lab host), we are
    in a container of some kind: a /dev that is devtmpfs is then the machine's.
    """
    if _kthreadd_visible():
        try:
            if os.stat("/proc/self/ns/mnt").st_ino == os.stat("/proc/2/ns/mnt").st_ino:
                return False
            return os.stat("/dev").st_dev == os.stat("/proc/2/root/dev").st_dev
        except OSError:
            return False
    return any(point == "/dev" and fstype == "devtmpfs" for point, fstype, _ in _mounts())


def private_dev() -> bool:
    """Make /dev private to this mount namespace if needed; True if it is (now) private."""
    if dev_is_private():
        return True
    if not needs_private_dev():
        return False
    submounts = [p for p, _, _ in _mounts() if p.startswith("/dev/")]
    lower = PRIVATE_ROOT / "machine"
    upper = PRIVATE_ROOT / "upper"
    work = PRIVATE_ROOT / "work"
    for directory in (lower, upper, work):
        directory.mkdir(parents=True, exist_ok=True)
    _mount(["--rbind", "/dev", str(lower)])
    _mount(["--make-rprivate", str(lower)])
    _mount(["-t", "overlay", OVERLAY_SOURCE, "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}", "/dev"])
    for point in submounts:
        source = lower / point.removeprefix("/dev/")
        with contextlib.suppress(subprocess.CalledProcessError):
            _mount(["--rbind", str(source), point])
    return True


def _mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def create(path: str, major: int, minor: int) -> None:
    """A block-device node at `path` (replacing a stale one of ours)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISBLK(target.lstat().st_mode) or target.is_symlink():
            target.unlink()
    os.mknod(target, 0o660 | stat.S_IFBLK, os.makedev(major, minor))


def remove(path: str, major: int, minor: int) -> None:
    """Remove the node if it still is the one we made."""
    target = Path(path)
    with contextlib.suppress(FileNotFoundError):
        st = target.lstat()
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(major, minor):
            target.unlink()
