"""Linux namespaces: entering them from Python and finding the processes inside.

`setns` is per thread for network namespaces, so a socket opened inside
`entered_netns()` belongs to that namespace for its whole life while the rest of
the process stays where it was. That is how tests open client connections in a
lab host without a subprocess.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace open at `fd`."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def named_netns_path(name: str) -> Path:
    """Where `ip netns add NAME` (and pyroute2) keep a named network namespace."""
    return Path("/run/netns") / name


def ns_inode(path: str | Path) -> int:
    return os.stat(path).st_ino


@contextlib.contextmanager
def entered_netns(path: str | Path) -> Iterator[None]:
    """Run the block with this thread in another network namespace, then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            setns(target, CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(home, CLONE_NEWNET)
    finally:
        os.close(home)


def pids_in_namespace(kind: str, inode: int) -> list[int]:
    """PIDs of every process whose `kind` namespace ("net", "mnt", ...) has this inode."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry.name}/ns/{kind}").st_ino == inode:
                found.append(int(entry.name))
        except OSError:
            continue  # gone, or a kernel thread we may not inspect
    return found


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (to tell a reused PID apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def clock_ticks_now() -> int:
    """Now, in the clock of `process_start_time` (ticks since boot, suspend included)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def innermost_pid(pid: int) -> int | None:
    """The PID a process has in its own (innermost) PID namespace."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None
