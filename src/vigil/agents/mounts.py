"""Mounts and their users, read from /proc (the Filesystem agent's view of the kernel).

`parse_mountinfo` is pure. `users_of` scans /proc for processes of *this*
mount namespace that hold a file, directory, executable or mapping on a
file system (compared by device number, as fuser -m does), so a process
in another namespace that happens to use the same path is never touched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    mount_id: int
    device: tuple[int, int]  # st_dev of the file system (major, minor)
    root: str
    mountpoint: str
    fstype: str
    source: str
    options: str


_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[Mount]:
    """/proc/self/mountinfo lines as records (see proc(5))."""
    mounts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        after = right.split()
        major, minor = fields[2].split(":")
        mounts.append(Mount(
            mount_id=int(fields[0]),
            device=(int(major), int(minor)),
            root=_unescape(fields[3]),
            mountpoint=_unescape(fields[4]),
            fstype=after[0],
            source=_unescape(after[1]) if len(after) > 1 else "",
            options=after[2] if len(after) > 2 else "",
        ))
    return mounts


def read_mounts(proc: Path = Path("/proc")) -> list[Mount]:
    return parse_mountinfo((proc / "self" / "mountinfo").read_text())


def mounted_at(mounts: list[Mount], directory: str) -> Mount | None:
    """The mount visible at `directory` (the last one mounted there wins)."""
    found = None
    for mount in mounts:
        if mount.mountpoint == directory:
            found = mount
    return found


def mounts_of_device(mounts: list[Mount], device: tuple[int, int]) -> list[Mount]:
    return [m for m in mounts if m.device == device]


def submounts(mounts: list[Mount], directory: str) -> list[Mount]:
    """Mounts below `directory`, deepest first (they must go before it can)."""
    prefix = directory.rstrip("/") + "/"
    below = [m for m in mounts if m.mountpoint.startswith(prefix)]
    return sorted(below, key=lambda m: m.mountpoint.count("/"), reverse=True)


def device_number(path: str) -> tuple[int, int] | None:
    """The (major, minor) of a block device node, or None if it is not one."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    import stat as stat_module

    if not stat_module.S_ISBLK(info.st_mode):
        return None
    return os.major(info.st_rdev), os.minor(info.st_rdev)


def users_of(device: tuple[int, int], proc: Path = Path("/proc")) -> list[int]:
    """PIDs in our mount namespace using the file system `device` (cwd, root, exe, fds, maps)."""
    wanted = os.makedev(*device)
    own_ns = os.stat(proc / "self" / "ns" / "mnt").st_ino
    me = os.getpid()
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit() or int(entry.name) in (me, 1):
            continue
        base = Path(entry.path)
        try:
            if os.stat(base / "ns" / "mnt").st_ino != own_ns:
                continue
        except OSError:
            continue
        if _uses(base, wanted, device):
            found.append(int(entry.name))
    return sorted(found)


def _uses(base: Path, wanted: int, device: tuple[int, int]) -> bool:
    for link in ("cwd", "root", "exe"):
        try:
            if os.stat(base / link).st_dev == wanted:
                return True
        except OSError:
            pass
    try:
        fds = os.listdir(base / "fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            if os.stat(base / "fd" / fd).st_dev == wanted:
                return True
        except OSError:
            continue
    marker = f" {device[0]:02x}:{device[1]:02x} "
    try:
        with open(base / "maps") as maps:
            for line in maps:
                if marker in line:
                    return True
    except OSError:
        pass
    return False
