"""Loop devices over the FUSE file: attach with direct I/O and autoclear, detach, inspect.

Loop devices are machine-global, so each one carries the identity of its
backing file (device and inode numbers) and a random tag of its own, written
into the loop device when it is attached (the kernel keeps it as
`lo_file_name`, which it only reports; sysfs shows the real backing file):
cleanup detaches a loop device only if it still points at our file and holds
our tag. The numbers alone are not enough: the FUSE mount
behind the file gets an anonymous device number that the kernel gives to the
next FUSE mount once ours is gone. `LO_FLAGS_AUTOCLEAR` makes the kernel detach
it by itself once nothing holds it open: the daemon keeps one descriptor open,
so a killed daemon (or a crashed lab host, whose mounts vanish with its mount
namespace) never leaves a loop device behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import secrets
import struct
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_GET_STATUS64 = 0x4C05
LOOP_SET_CAPACITY = 0x4C07
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
BLKFLSBUF = 0x1261
BLKBSZGET = 0x80081270
BLKBSZSET = 0x40081271
BLKGETSIZE64 = 0x80081272
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_DIRECT_IO = 16
_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
_CONFIG = struct.Struct("=II" + _INFO64.format.lstrip("=") + "8Q")


@dataclass(frozen=True)
class LoopIdentity:
    """Which loop device, and which file it must be backed by to be ours."""

    name: str  # loop7
    major: int
    minor: int
    backing_dev: int
    backing_ino: int
    #: written into the loop device at attach (empty: attached before tags existed)
    tag: str = ""

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _node(number: int) -> str:
    path = f"/dev/loop{number}"
    if not os.path.exists(path):  # a private /dev may not show a brand-new node yet
        os.mknod(path, 0o660 | 0o060000, os.makedev(7, number))
    return path


def attach(backing: str, direct_io: bool = True, retries: int = 20) -> tuple[LoopIdentity, int]:
    """Attach a free loop device to `backing`; returns its identity and an open fd on it.

    Must not run on the thread that serves the FUSE file (opening it needs the
    daemon to answer).
    """
    file_fd = os.open(backing, os.O_RDWR | (os.O_DIRECT if direct_io else 0))
    try:
        st = os.fstat(file_fd)
        flags = LO_FLAGS_AUTOCLEAR | (LO_FLAGS_DIRECT_IO if direct_io else 0)
        tag = f"vigil-{secrets.token_hex(12)}"
        control = os.open("/dev/loop-control", os.O_RDWR)
        try:
            for _ in range(retries):
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
                loop_fd = os.open(_node(number), os.O_RDWR)
                info = _INFO64.pack(0, 0, 0, 0, 0, 0, 0, 0, flags, tag.encode(), b"", b"", 0, 0)
                config = _CONFIG.pack(file_fd, 0, *_INFO64.unpack(info), *([0] * 8))
                try:
                    fcntl.ioctl(loop_fd, LOOP_CONFIGURE, config)
                except OSError as exc:
                    os.close(loop_fd)
                    if exc.errno == errno.EBUSY:  # someone else took it first
                        continue
                    raise
                rdev = os.fstat(loop_fd).st_rdev
                identity = LoopIdentity(f"loop{number}", os.major(rdev), os.minor(rdev),
                                        st.st_dev, st.st_ino, tag)
                return identity, loop_fd
            raise OSError(errno.EBUSY, "no free loop device")
        finally:
            os.close(control)
    finally:
        os.close(file_fd)


def status(name: str) -> tuple[int, int, int, str] | None:
    """(backing device, backing inode, flags, tag) of a loop device, or None if unattached."""
    try:
        fd = os.open(f"/dev/{name}", os.O_RDONLY)
    except OSError:
        return _status_from_sysfs(name)
    try:
        raw = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_INFO64.size))
    except OSError:
        return None
    finally:
        os.close(fd)
    fields = _INFO64.unpack(raw)
    return fields[0], fields[1], fields[8], fields[9].split(b"\0", 1)[0].decode(errors="replace")


def _status_from_sysfs(name: str) -> tuple[int, int, int, str] | None:
    base = Path("/sys/block") / name / "loop"
    if not base.exists():
        return None
    return -1, int((base / "inode").read_text().strip() or 0) if (base / "inode").exists() \
        else -1, 0, ""


def is_ours(identity: LoopIdentity) -> bool:
    found = status(identity.name)
    return (found is not None and found[:2] == (identity.backing_dev, identity.backing_ino)
            and found[3] == identity.tag)


def in_use(identity: LoopIdentity) -> bool:
    """Mounted or otherwise claimed exclusively (what `secondary` must refuse)."""
    try:
        fd = os.open(identity.path, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        return exc.errno == errno.EBUSY
    os.close(fd)
    holders = Path("/sys/block") / identity.name / "holders"
    return holders.exists() and any(holders.iterdir())


def drop_caches(fd: int) -> int:
    """Forget the block layer's cached pages: a promoted node must not see stale data.

    The daemon holds the loop device open, so the kernel never drops its page cache
    on the last close as it does for a DRBD device: pages a file system read while
    this node was primary before would outlive the peer's later writes, which reach
    the backing file directly. BLKFLSBUF evicts only pages nobody holds (not dirty,
    locked or mapped); if any stay resident, changing the device's block size there
    and back truncates the whole cache. Returns the pages that were still resident
    after BLKFLSBUF (0: it was enough).
    """
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, BLKFLSBUF)
    left = resident_pages(fd)
    if left:
        with contextlib.suppress(OSError):
            size = struct.unpack("i", fcntl.ioctl(fd, BLKBSZGET, b"\0" * 4))[0]
            for bsize in (4096 if size != 4096 else 2048, size):
                fcntl.ioctl(fd, BLKBSZSET, struct.pack("i", bsize))
    return left


def resident_pages(fd: int) -> int:
    """How many pages of the device sit in the page cache (mmap, then mincore)."""
    size = struct.unpack("Q", fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8))[0]
    if size == 0:
        return 0
    page = os.sysconf("SC_PAGE_SIZE")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap of the loop device failed")
    try:
        vector = ctypes.create_string_buffer((size + page - 1) // page)
        if libc.mincore(address, size, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore of the loop device failed")
        return sum(byte & 1 for byte in vector.raw)
    finally:
        libc.munmap(address, size)


def set_capacity(fd: int) -> None:
    """Make the loop device take its backing file's size again (after the volume grew)."""
    fcntl.ioctl(fd, LOOP_SET_CAPACITY)


def release(identity: LoopIdentity, fd: int | None, timeout: float = 10.0) -> bool:
    """Detach our loop device and close our descriptor; True once it is gone."""
    try:
        detach(identity, fd, timeout)
    finally:
        if fd is not None:
            os.close(fd)
    deadline = time.monotonic() + timeout
    while is_ours(identity):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def abort_fuse(backing_dev: int) -> bool:
    """Abort the FUSE connection behind a loop device whose daemon is gone.

    Needed when a killed daemon's connection stays up (its requests then wait
    forever and the loop device cannot finish detaching). fusectl is mounted
    in a throwaway mount namespace, so the machine's mounts are untouched.
    """
    if os.major(backing_dev) != 0:
        return False
    connection = os.minor(backing_dev)
    script = ("mount -t fusectl none /sys/fs/fuse/connections && "
              f"test -d /sys/fs/fuse/connections/{connection} && "
              f"echo 1 > /sys/fs/fuse/connections/{connection}/abort")

    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           script], capture_output=True, check=False)
    return done.returncode == 0


def force_detach(identity: LoopIdentity, timeout: float = 5.0) -> bool:
    """Last resort for cleanup: abort a dead FUSE connection, then detach."""
    if not is_ours(identity):
        return True
    if detach(identity, None, timeout=1.0) and not is_ours(identity):
        return True
    abort_fuse(identity.backing_dev)
    return detach(identity, None, timeout)


def detach(identity: LoopIdentity, fd: int | None = None, timeout: float = 5.0) -> bool:
    """Detach if it still is ours; True when it is gone. Retries while it is busy."""
    deadline = time.monotonic() + timeout
    own = fd
    try:
        while True:
            if not is_ours(identity):
                return True
            try:
                if own is None:
                    own = os.open(identity.path, os.O_RDONLY)
                fcntl.ioctl(own, LOOP_CLR_FD)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    return True
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    return False
            if own is not None and own != fd:
                os.close(own)
                own = None
            if not is_ours(identity):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    finally:
        if own is not None and own != fd:
            os.close(own)
