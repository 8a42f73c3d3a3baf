"""The lab's faulty disk: with bad blocks, only the I/O that touches one fails."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os

import pytest

pyfuse3 = pytest.importorskip("pyfuse3")

from vigil.testing.faulty_disk import (  # noqa: E402
    BAD_BLOCK_SIZE,
    BAD_ONE_IN,
    FaultyDisk,
    is_bad_block,
    touches_bad_block,
)


def test_bad_blocks_are_scattered_one_in_n():
    blocks = range(131072)  # a 512 MiB disk
    bad = [b for b in blocks if is_bad_block(b)]
    assert len(bad) == pytest.approx(len(blocks) / BAD_ONE_IN, rel=0.02)
    gaps = [b - a for a, b in itertools.pairwise(bad)]
    assert min(gaps) > 1 and max(gaps) < 4 * BAD_ONE_IN  # no long good or bad runs


def test_io_touches_a_bad_block_if_any_byte_lies_in_one():
    bad = next(b for b in range(1, 1000) if is_bad_block(b) and not is_bad_block(b - 1)
               and not is_bad_block(b + 1))
    at = bad * BAD_BLOCK_SIZE
    assert touches_bad_block(at, 512)
    assert touches_bad_block(at + BAD_BLOCK_SIZE - 1, 1)
    assert touches_bad_block(at - 512, 1024)  # straddles into it
    assert not touches_bad_block(at - BAD_BLOCK_SIZE, BAD_BLOCK_SIZE)
    assert not touches_bad_block(at + BAD_BLOCK_SIZE, BAD_BLOCK_SIZE)


def _errno(coroutine) -> int | None:
    try:
        asyncio.run(coroutine)
    except pyfuse3.FUSEError as exc:
        return exc.errno
    return None


def test_the_disk_fails_all_io_its_bad_blocks_or_none(tmp_path):
    image = tmp_path / "image"
    image.write_bytes(b"\0" * (64 * BAD_BLOCK_SIZE))
    fd = os.open(image, os.O_RDWR)
    try:
        disk = FaultyDisk(fd)
        good = next(b for b in range(64) if not is_bad_block(b)) * BAD_BLOCK_SIZE
        bad = next(b for b in range(64) if is_bad_block(b)) * BAD_BLOCK_SIZE
        data = b"x" * BAD_BLOCK_SIZE
        disk.failing, disk.bad_blocks_only = True, True
        assert _errno(disk.write(0, bad, data)) == errno.EIO
        assert _errno(disk.read(0, bad, 512)) == errno.EIO
        assert _errno(disk.write(0, good, data)) is None
        assert _errno(disk.fsync(0, True)) is None
        assert os.pread(fd, BAD_BLOCK_SIZE, good) == data
        assert os.pread(fd, BAD_BLOCK_SIZE, bad) == b"\0" * BAD_BLOCK_SIZE  # never written
        disk.bad_blocks_only = False
        assert _errno(disk.read(0, good, 512)) == errno.EIO
        assert _errno(disk.fsync(0, True)) == errno.EIO
        disk.failing = False
        assert _errno(disk.write(0, bad, data)) is None
    finally:
        os.close(fd)
