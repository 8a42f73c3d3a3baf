"""The FUSE front end: one file, `disk`, whose reads and writes are the volume's.

pyfuse3 in asyncio mode. The file is opened with FOPEN_DIRECT_IO and the
writeback cache stays off: the kernel must not acknowledge a write before
the replication core has it (protocol C), and a newly promoted node must not
serve stale cached pages. A loop device (`losetup --direct-io=on`) over this
file is the block device a file system mounts.
"""

from __future__ import annotations

import errno
import os
import stat
import time

import pyfuse3

from vigil.replication.node import Node

DISK_NAME = b"disk"
DISK_INODE = pyfuse3.ROOT_INODE + 1


class OneFileFS(pyfuse3.Operations):
    """A directory that holds one regular file, `disk`, opened for direct I/O.

    Subclasses say how large it is and do its reads, writes and flushes.
    """

    enable_writeback_cache = False
    #: how long the kernel may keep the file's attributes
    attr_timeout = 3600

    def __init__(self) -> None:
        super().__init__()
        self._time_ns = time.time_ns()

    def disk_size(self) -> int:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _attributes(self, inode: int) -> pyfuse3.EntryAttributes:
        entry = pyfuse3.EntryAttributes()
        entry.st_atime_ns = entry.st_mtime_ns = entry.st_ctime_ns = self._time_ns
        entry.st_uid, entry.st_gid = os.getuid(), os.getgid()
        entry.st_ino = inode
        entry.entry_timeout = entry.attr_timeout = self.attr_timeout
        if inode == pyfuse3.ROOT_INODE:
            entry.st_mode = stat.S_IFDIR | 0o700
            entry.st_nlink = 2
        elif inode == DISK_INODE:
            size = self.disk_size()
            entry.st_mode = stat.S_IFREG | 0o600
            entry.st_nlink = 1
            entry.st_size = size
            entry.st_blksize = 4096
            entry.st_blocks = size // 512
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return entry

    async def getattr(self, inode, ctx=None):
        return self._attributes(inode)

    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode == pyfuse3.ROOT_INODE and name == DISK_NAME:
            return self._attributes(DISK_INODE)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def setattr(self, inode, attr, fields, fh, ctx):
        if fields.update_size and attr.st_size != self.disk_size():
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

    async def flush(self, fh):
        pass

    async def release(self, fh):
        pass


class VolumeFS(OneFileFS):
    """The volume's file: its reads and writes are the replication core's."""

    def __init__(self, node: Node):
        super().__init__()
        self.node = node

    def disk_size(self) -> int:
        return self.node.size

    async def read(self, fh, off, size):
        try:
            return await self.node.read(off, size)
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None

    async def write(self, fh, off, buf):
        try:
            return await self.node.write(off, bytes(buf))
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None

    async def fsync(self, fh, datasync):
        try:
            await self.node.flush()
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None

    async def statfs(self, ctx):
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = 4096
        data.f_blocks = self.node.size // 4096
        data.f_files = 2
        data.f_namemax = 255
        return data
