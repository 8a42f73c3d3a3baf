"""The local disk: a backing file or block device, and the metadata kept on it (or beside it).

Plain positional I/O. Data writes go through the page cache, as a disk with a
volatile write cache; `flush` (fdatasync) is the barrier, and the metadata
writes that must be durable (activity-log transactions, the superblock) are
followed by one.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import replace

from vigil.errors import VigilError
from vigil.replication.activity_log import encode_transaction, latest_transaction
from vigil.replication.bitmap import PAGE_BYTES, Bitmap
from vigil.replication.geometry import (
    AL_SLOT_SIZE,
    AL_SLOTS,
    BLOCK_SIZE,
    Layout,
    external_layout,
    internal_layout,
)
from vigil.replication.metadata import MdFlag, MetadataError, Superblock


def device_size(fd: int) -> int:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    return os.lseek(fd, 0, os.SEEK_END)


class BackingStore:
    """The data area of the backing device."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise VigilError(f"cannot open backing disk {path}: {exc.strerror}") from None
        self.size = device_size(self.fd)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def write(self, offset: int, data: bytes) -> None:
        written = os.pwrite(self.fd, data, offset)
        if written != len(data):  # pragma: no cover - regular files do not short-write
            raise OSError(f"short write at {offset}: {written} of {len(data)}")

    def flush(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class MetadataStore:
    """Superblock, bitmap pages and activity-log slots on the metadata device."""

    def __init__(self, fd: int, layout: Layout, own_fd: bool = False):
        self.fd = fd
        self.layout = layout
        self._own_fd = own_fd
        self.al_number = 0

    @classmethod
    def open(cls, backing: BackingStore, meta_disk: str, index: int = 0) -> MetadataStore:
        if meta_disk == "internal":
            return cls(backing.fd, internal_layout(backing.size))
        fd = os.open(meta_disk, os.O_RDWR | os.O_CLOEXEC)
        layout = external_layout(backing.size, index)
        if device_size(fd) < layout.superblock_offset + layout.metadata_size:
            os.close(fd)
            raise VigilError(f"external meta-disk {meta_disk} is too small for slot {index}")
        return cls(fd, layout, own_fd=True)

    # -- superblock ----------------------------------------------------------------------
    def read_superblock(self) -> Superblock:
        block = os.pread(self.fd, 4096, self.layout.superblock_offset)
        sb = Superblock.decode(block)
        if sb.data_size != self.layout.data_size:
            raise MetadataError(
                f"metadata describes {sb.data_size} bytes of data but the backing device "
                f"now holds {self.layout.data_size} (run 'vigil volume resize')"
            )
        return sb

    def write_superblock(self, sb: Superblock) -> None:
        os.pwrite(self.fd, sb.encode(), self.layout.superblock_offset)
        os.fdatasync(self.fd)

    # -- bitmap ----------------------------------------------------------------------------
    def read_bitmap(self) -> Bitmap:
        blocks = self.layout.data_size // BLOCK_SIZE
        raw = os.pread(self.fd, (blocks + 7) // 8, self.layout.bitmap_offset)
        return Bitmap(blocks, raw)

    def write_bitmap(self, bitmap: Bitmap, everything: bool = False, sync: bool = True) -> int:
        """Persist changed pages (or all); returns how many pages were written."""
        if everything:
            bitmap.dirty_pages.clear()
            return self.write_bitmap_pages({p: bitmap.page(p) for p in range(bitmap.pages)},
                                           sync)
        return self.write_bitmap_pages(bitmap.take_dirty(), sync)

    def write_bitmap_pages(self, pages: dict[int, bytes], sync: bool = True) -> int:
        """Persist pages taken earlier (`Bitmap.take_dirty`); returns how many."""
        for page, content in pages.items():
            os.pwrite(self.fd, content, self.layout.bitmap_offset + page * PAGE_BYTES)
        if pages and sync:
            os.fdatasync(self.fd)
        return len(pages)

    # -- activity log ------------------------------------------------------------------------
    def read_activity_log(self) -> list[int]:
        slots = [os.pread(self.fd, AL_SLOT_SIZE, self.layout.al_offset + i * AL_SLOT_SIZE)
                 for i in range(AL_SLOTS)]
        number, extents = latest_transaction(slots)
        self.al_number = number
        return extents

    def write_activity_log(self, extents: list[int]) -> None:
        self.al_number += 1
        slot = self.al_number % AL_SLOTS
        os.pwrite(self.fd, encode_transaction(self.al_number, extents),
                  self.layout.al_offset + slot * AL_SLOT_SIZE)
        os.fdatasync(self.fd)

    def close(self) -> None:
        if self._own_fd:
            os.close(self.fd)


def create_md(disk: str, meta_disk: str = "internal", index: int = 0,
              al_extents: int = 1237, force: bool = False) -> Superblock:
    """Write fresh metadata: no data generation yet, nothing consistent, empty log."""
    backing = BackingStore(disk)
    try:
        store = MetadataStore.open(backing, meta_disk, index)
        try:
            if not force:
                try:
                    old = Superblock.decode(os.pread(store.fd, 4096,
                                                     store.layout.superblock_offset))
                except MetadataError:
                    old = None
                if old is not None:
                    raise VigilError(
                        f"{disk} already has vigil metadata (generation "
                        f"{old.generations.current:016X}); use --force to overwrite")
            sb = Superblock(store.layout.data_size, al_extents=al_extents,
                            volume_id=secrets.randbits(64))
            blank = Bitmap(store.layout.data_size // BLOCK_SIZE)
            store.write_bitmap(blank, everything=True, sync=False)
            for i in range(AL_SLOTS):
                os.pwrite(store.fd, bytes(AL_SLOT_SIZE), store.layout.al_offset + i * AL_SLOT_SIZE)
            store.write_superblock(replace(sb, flags=MdFlag(0)))
            return sb
        finally:
            store.close()
    finally:
        backing.close()
