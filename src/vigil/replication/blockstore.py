"""The local disk: a backing file or block device, and the metadata kept on it (or beside it).

Plain positional I/O. Data writes go through the page cache, as a disk with a
volatile write cache; `flush` (fdatasync) is the barrier, and the metadata
writes that must be durable (activity-log transactions, the superblock) are
followed by one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path

from vigil.errors import VigilError
from vigil.replication.activity_log import encode_transaction, latest_transaction
from vigil.replication.bitmap import PAGE_BYTES, Bitmap
from vigil.replication.geometry import (
    AL_SLOT_SIZE,
    AL_SLOTS,
    BLOCK_SIZE,
    EXTERNAL_SLOT_SIZE,
    SUPERBLOCK_SIZE,
    Layout,
    external_capacity,
    external_layout,
    internal_layout,
)
from vigil.replication.metadata import MD_MAGIC, MdFlag, MetadataError, Superblock
from vigil.replication.resize import relocation_refusal


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
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class DetachedDisk:
    """Where the backing disk and its metadata were, after `detach` (a diskless node).

    Data I/O fails with ENXIO (a replicated write is then refused with NEG_ACK: the
    peer marks the blocks out of sync); metadata writes are dropped (there is no
    disk to keep them on), a flush has nothing to do.
    """

    fd = -1

    def __init__(self, size: int, capacity: int):
        self.size = size
        self.capacity = capacity

    def read(self, offset: int, length: int) -> bytes:
        raise OSError(errno.ENXIO, "no disk attached (diskless)")

    def write(self, offset: int, data: bytes) -> None:
        raise OSError(errno.ENXIO, "no disk attached (diskless)")

    def flush(self) -> None:
        """Nothing written here, nothing to flush."""

    def write_superblock(self, sb: Superblock) -> None:
        """Kept in memory only: read again from the disk at attach."""

    def write_bitmap(self, bitmap: Bitmap, everything: bool = False, sync: bool = True) -> int:
        return 0

    def write_bitmap_pages(self, pages: dict[int, bytes], sync: bool = True) -> int:
        return 0

    def write_activity_log(self, extents: list[int]) -> None:
        """No writes happen on a diskless node."""

    def close(self) -> None:
        """Nothing open."""


class MetadataStore:
    """Superblock, bitmap pages and activity-log slots on the metadata device.

    `layout.data_size` is the capacity the backing disk allows; the volume's
    size is the superblock's `data_size`, at most that. Internal metadata is
    found at the end of the backing disk, or, if the disk grew while the
    volume was down, at the end of its last known size (`known_size_file`,
    DRBD's .lkbd); `stale` is then set and `relocate` moves it.
    """

    def __init__(self, fd: int, layout: Layout, own_fd: bool = False,
                 known_size_file: Path | None = None):
        self.fd = fd
        self.layout = layout
        self._own_fd = own_fd
        self.al_number = 0
        self.known_size_file = known_size_file
        #: the metadata sits before the end of a backing disk that grew (see `relocate`)
        self.stale = False

    @classmethod
    def open(cls, backing: BackingStore, meta_disk: str, index: int = 0,
             known_size_file: Path | None = None) -> MetadataStore:
        if meta_disk == "internal":
            store = cls(backing.fd, internal_layout(backing.size),
                        known_size_file=known_size_file)
            known = read_known_size(known_size_file)
            if (known is not None and known < backing.size and not store.has_superblock()
                    and cls(backing.fd, internal_layout(known)).has_superblock()):
                store.layout = internal_layout(known)
                store.stale = True
            return store
        fd = os.open(meta_disk, os.O_RDWR | os.O_CLOEXEC)
        layout = external_layout(external_capacity(backing.size), index)
        if device_size(fd) < layout.superblock_offset + layout.metadata_size:
            os.close(fd)
            raise VigilError(f"external meta-disk {meta_disk} is too small for slot {index}")
        return cls(fd, layout, own_fd=True)

    @property
    def capacity(self) -> int:
        return self.layout.data_size

    def has_superblock(self) -> bool:
        block = os.pread(self.fd, len(MD_MAGIC), self.layout.superblock_offset)
        return block == MD_MAGIC

    # -- superblock ----------------------------------------------------------------------
    def read_superblock(self) -> Superblock:
        block = os.pread(self.fd, 4096, self.layout.superblock_offset)
        sb = Superblock.decode(block)
        if sb.data_size > self.layout.data_size:
            raise MetadataError(
                f"metadata describes {sb.data_size} bytes of data but the backing device "
                f"now holds only {self.layout.data_size}: it shrank (vigil never shrinks a "
                "volume)")
        return sb

    def write_superblock(self, sb: Superblock) -> None:
        os.pwrite(self.fd, sb.encode(), self.layout.superblock_offset)
        os.fdatasync(self.fd)

    # -- growth -------------------------------------------------------------------------------
    def grown_layout(self, backing_size: int) -> Layout | None:
        """Where the metadata goes for a backing disk of `backing_size` (None: no change)."""
        if self.layout.internal:
            new = internal_layout(backing_size)
        else:
            new = external_layout(external_capacity(backing_size),
                                  self.layout.superblock_offset // EXTERNAL_SLOT_SIZE)
        return new if new.data_size > self.layout.data_size else None

    def relocate(self, new: Layout, bitmap: Bitmap, sb: Superblock,
                 hot_extents: list[int]) -> None:
        """Use `new` from now on, writing everything there first (crash-safe).

        Internal metadata is copied to the new end of the disk, superblock last:
        until that write is on disk, the old copy (found through the known size)
        stays the valid one, and nothing writes into it before the volume grows
        over it, which happens only after the switch.
        """
        if self.layout.internal:
            refusal = relocation_refusal(self.layout, new)
            if refusal:
                raise VigilError(refusal)
        old, self.layout = self.layout, new
        try:
            self.write_bitmap(bitmap, everything=True, sync=False)
            if new.internal:
                for i in range(AL_SLOTS):
                    os.pwrite(self.fd, bytes(AL_SLOT_SIZE), new.al_offset + i * AL_SLOT_SIZE)
                self.write_activity_log(hot_extents)
            self.write_superblock(sb)
        except OSError:
            self.layout = old
            raise
        self.stale = False
        self.record_place()

    def record_place(self) -> None:
        """Remember where internal metadata ends (the disk's size then), so that it is
        found again if the disk grows while the volume is down."""
        if self.layout.internal:
            write_known_size(self.known_size_file,
                             self.layout.superblock_offset + SUPERBLOCK_SIZE)

    # -- bitmap ----------------------------------------------------------------------------
    def read_bitmap(self, data_size: int | None = None) -> Bitmap:
        blocks = (self.layout.data_size if data_size is None else data_size) // BLOCK_SIZE
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
        if self._own_fd and self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def read_known_size(path: Path | None) -> int | None:
    """The backing disk's size when its internal metadata was last placed (None: unknown)."""
    if path is None:
        return None
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return value if value > 0 else None


def write_known_size(path: Path | None, size: int) -> None:
    """Record it, atomically (a torn file would hide the metadata after a crash)."""
    if path is None or read_known_size(path) == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    with open(partial, "w") as out:
        out.write(f"{size}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def create_md(disk: str, meta_disk: str = "internal", index: int = 0,
              al_extents: int = 1237, force: bool = False,
              known_size_file: Path | None = None) -> Superblock:
    """Write fresh metadata: no data generation yet, nothing consistent, empty log."""
    backing = BackingStore(disk)
    try:
        store = MetadataStore.open(backing, meta_disk, index)  # at the end, whatever was known
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
            store.known_size_file = known_size_file
            store.record_place()
            return sb
        finally:
            store.close()
    finally:
        backing.close()
