"""A disk that fails on demand: one FUSE file over an image, for the lab's disk-error fault.

`python -m vigil.testing.faulty_disk IMAGE MOUNTPOINT` serves MOUNTPOINT/disk,
whose bytes are IMAGE's. SIGUSR1 makes every read, write and flush of it fail
with EIO (a disk that died under its file system); SIGHUP makes only the reads
and writes that touch a bad block fail (a disk with bad sectors: one 4 KiB block
in `BAD_ONE_IN`, the same ones every time, flushes work); SIGUSR2 makes them all
work again, SIGTERM unmounts and ends. The file is opened for direct I/O, so an
error reaches the reader or writer at once instead of a page cache.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import sys

import pyfuse3

try:
    import pyfuse3.asyncio as pyfuse3_asyncio
except ModuleNotFoundError:  # pyfuse3 < 3.3 (Debian 12's) ships it as a module of its own
    import pyfuse3_asyncio  # type: ignore[no-redef]

from vigil.replication.fuse_frontend import OneFileFS

#: The size of the blocks that go bad together.
BAD_BLOCK_SIZE = 4096
#: With bad blocks, one block in this many fails: enough that a database's writes
#: meet one within a second or two, few enough that most I/O still works.
BAD_ONE_IN = 16


def is_bad_block(block: int) -> bool:
    """Whether a block is one of the bad ones: scattered, and the same every time."""
    return (block * 2654435761 >> 7) % BAD_ONE_IN == 0


def touches_bad_block(offset: int, size: int) -> bool:
    """Whether I/O of `size` bytes at `offset` touches a bad block."""
    first, last = offset // BAD_BLOCK_SIZE, (offset + max(size, 1) - 1) // BAD_BLOCK_SIZE
    return any(is_bad_block(block) for block in range(first, last + 1))


class FaultyDisk(OneFileFS):
    """The image's bytes, or EIO while `failing` (every I/O, or with `bad_blocks_only`,
    the reads and writes that touch a bad block)."""

    attr_timeout = 1

    def __init__(self, image_fd: int):
        super().__init__()
        self.fd = image_fd
        self.failing = False
        self.bad_blocks_only = False

    def disk_size(self) -> int:
        return os.fstat(self.fd).st_size

    def _check(self, offset: int | None = None, size: int = 0) -> None:
        if not self.failing:
            return
        if self.bad_blocks_only and (offset is None or not touches_bad_block(offset, size)):
            return
        raise pyfuse3.FUSEError(errno.EIO)

    async def read(self, fh, off, size):
        self._check(off, size)
        return os.pread(self.fd, size, off)

    async def write(self, fh, off, buf):
        self._check(off, len(buf))
        return os.pwrite(self.fd, buf, off)

    async def fsync(self, fh, datasync):
        self._check()
        os.fdatasync(self.fd)


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

        def fail(failing: bool, bad_blocks_only: bool = False) -> None:
            disk.failing, disk.bad_blocks_only = failing, bad_blocks_only
            said = ("failing its bad blocks" if bad_blocks_only else "failing") if failing \
                else "working"
            print(f"faulty-disk: {said}", flush=True)

        loop.add_signal_handler(signal.SIGUSR1, fail, True)
        loop.add_signal_handler(signal.SIGHUP, fail, True, True)
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
