"""A disk that fails on demand: one FUSE file over an image, for the lab's disk-error fault.

`python -m vigil.testing.faulty_disk IMAGE MOUNTPOINT` serves MOUNTPOINT/disk,
whose bytes are IMAGE's. SIGUSR1 makes every read, write and flush of it fail
with EIO (a disk that died under its file system), SIGUSR2 makes them work
again, SIGTERM unmounts and ends. The file is opened for direct I/O, so an
error reaches the reader or writer at once instead of a page cache.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import stat
import sys
import time

import pyfuse3

try:
    import pyfuse3.asyncio as pyfuse3_asyncio
except ModuleNotFoundError:  # pyfuse3 < 3.3 (Debian 12's) ships it as a module of its own
    import pyfuse3_asyncio  # type: ignore[no-redef]

DISK_NAME = b"disk"
DISK_INODE = pyfuse3.ROOT_INODE + 1


class FaultyDisk(pyfuse3.Operations):
    """The image's bytes, or EIO while `failing`."""

    enable_writeback_cache = False

    def __init__(self, image_fd: int):
        super().__init__()
        self.fd = image_fd
        self.failing = False
        self._time_ns = time.time_ns()

    def _attributes(self, inode: int) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_atime_ns = entry.st_mtime_ns = entry.st_ctime_ns = self._time_ns
        entry.st_ino = inode
        entry.entry_timeout = entry.attr_timeout = 1
        if inode == pyfuse3.ROOT_INODE:
            entry.st_mode, entry.st_nlink = stat.S_IFDIR | 0o700, 2
        elif inode == DISK_INODE:
            size = os.fstat(self.fd).st_size
            entry.st_mode, entry.st_nlink = stat.S_IFREG | 0o600, 1
            entry.st_size, entry.st_blksize, entry.st_blocks = size, 4096, size // 512
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return entry

    def _check(self) -> None:
        if self.failing:
            raise pyfuse3.FUSEError(errno.EIO)

    async def getattr(self, inode, ctx=None):
        return self._attributes(inode)

    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode == pyfuse3.ROOT_INODE and name == DISK_NAME:
            return self._attributes(DISK_INODE)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def setattr(self, inode, attr, fields, fh, ctx):
        if fields.update_size:
            raise pyfuse3.FUSEError(errno.EPERM)
        return self._attributes(inode)

    async def opendir(self, inode, ctx):
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh, start_id, token):
        if start_id == 0:
            pyfuse3.readdir_reply(token, DISK_NAME, self._attributes(DISK_INODE), 1)

    async def releasedir(self, fh):
        pass

    async def open(self, inode, flags, ctx):
        if inode != DISK_INODE:
            raise pyfuse3.FUSEError(errno.EISDIR)
        return pyfuse3.FileInfo(fh=inode, direct_io=True, keep_cache=False)

    async def read(self, fh, off, size):
        self._check()
        return os.pread(self.fd, size, off)

    async def write(self, fh, off, buf):
        self._check()
        return os.pwrite(self.fd, buf, off)

    async def fsync(self, fh, datasync):
        self._check()
        os.fdatasync(self.fd)

    async def flush(self, fh):
        pass

    async def release(self, fh):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.testing.faulty_disk",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("mountpoint")
    args = parser.parse_args(argv)
    image_fd = os.open(args.image, os.O_RDWR | os.O_CLOEXEC)
    disk = FaultyDisk(image_fd)
    os.makedirs(args.mountpoint, exist_ok=True)
    options = set(pyfuse3.default_options)
    options.add("fsname=vigil-faulty-disk")
    pyfuse3_asyncio.enable()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def fail(failing: bool) -> None:
            disk.failing = failing
            print(f"faulty-disk: {'failing' if failing else 'working'}", flush=True)

        loop.add_signal_handler(signal.SIGUSR1, fail, True)
        loop.add_signal_handler(signal.SIGUSR2, fail, False)
        loop.add_signal_handler(signal.SIGTERM, done.set)
        pyfuse3.init(disk, args.mountpoint, options)
        print(f"faulty-disk: serving {args.image} at {args.mountpoint}/disk", flush=True)
        fuse_task = asyncio.ensure_future(pyfuse3.main(min_tasks=2, max_tasks=32))
        await asyncio.wait({fuse_task, asyncio.ensure_future(done.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        pyfuse3.terminate()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(fuse_task, 5)
        pyfuse3.close(unmount=True)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
