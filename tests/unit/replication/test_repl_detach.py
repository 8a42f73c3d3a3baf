"""detach and attach on one node: what a diskless node refuses, and what its peer does."""

from __future__ import annotations

import asyncio
import errno

import pytest

from vigil.replication.blockstore import BackingStore, MetadataStore
from vigil.replication.geometry import BLOCK_SIZE
from vigil.replication.metadata import MdFlag
from vigil.replication.states import Disk, Role, SetupRefused, StateChangeRefused


def test_a_detached_node_is_diskless_refuses_what_needs_a_disk_and_attaches_back(node_on):
    node = node_on()
    path = node.backing.path
    node.bitmap.set_range(4, 6)
    assert "diskless" in asyncio.run(node.detach())
    assert node.diskless and node.disk is Disk.DISKLESS
    assert not node.want_connection  # no metadata to handshake with
    for refused in (lambda: asyncio.run(node.promote()), node.outdate,
                    lambda: node.connect(False), lambda: asyncio.run(node.invalidate())):
        with pytest.raises(StateChangeRefused, match="diskless"):
            refused()
    with pytest.raises(OSError):  # a replicated write would be refused (NEG_ACK)
        node.backing.write(0, b"x" * BLOCK_SIZE)
    node.backing.flush()  # nothing to flush, no error
    assert asyncio.run(node.detach()) == "diskless already"

    backing = BackingStore(path)
    md = MetadataStore.open(backing, "internal")
    assert "attached" in node.attach(backing, md)
    assert not node.diskless and node.bitmap.count == 2  # what it had marked, kept on disk
    assert node.want_connection
    with pytest.raises(SetupRefused, match="attached already"):
        node.attach(backing, md)


def test_a_primary_detaches_only_with_an_up_to_date_peer_to_serve_its_io(node_on):
    node = node_on()
    node._write_sb(node.sb.with_flag(MdFlag.CONSISTENT))
    asyncio.run(node.promote(force=True))
    assert node.role is Role.PRIMARY
    with pytest.raises(StateChangeRefused, match="UpToDate peer"):
        asyncio.run(node.detach())
    assert not node.diskless


def _primary_alone(node_on, policy: str):
    from dataclasses import replace

    node = node_on()
    node.cfg = replace(node.cfg, on_io_error=policy)
    node._write_sb(node.sb.with_flag(MdFlag.CONSISTENT))
    asyncio.run(node.promote(force=True))

    def broken(offset: int, data: bytes) -> None:
        raise OSError(errno.EIO, "Input/output error")

    node.backing.write = broken
    return node


def test_on_io_error_detach_without_a_peer_leaves_the_primary_diskless_and_fails_the_write(
        node_on):
    node = _primary_alone(node_on, "detach")
    with pytest.raises(OSError) as failed:
        asyncio.run(node.write(0, b"w" * BLOCK_SIZE))
    assert failed.value.errno == errno.EIO
    assert node.diskless and node.role is Role.PRIMARY
    with pytest.raises(OSError, match="no access to good data"):  # nothing to read from
        asyncio.run(node.read(0, BLOCK_SIZE))


def test_on_io_error_pass_on_keeps_the_disk_and_returns_the_error(node_on):
    node = _primary_alone(node_on, "pass_on")
    with pytest.raises(OSError):
        asyncio.run(node.write(0, b"w" * BLOCK_SIZE))
    assert not node.diskless
    assert len(asyncio.run(node.read(0, BLOCK_SIZE))) == BLOCK_SIZE


def test_a_secondary_keeps_the_disk_its_diskless_primary_peer_uses(node_on):
    node = node_on()
    node._write_sb(node.sb.with_flag(MdFlag.CONSISTENT))
    node.uptodate = True
    node._peer_state({"role": "Primary", "disk": "Diskless"})
    with pytest.raises(StateChangeRefused, match="diskless primary"):
        asyncio.run(node.detach())


def test_the_peer_of_a_detached_node_counts_writes_from_a_new_generation(node_on):
    node = node_on()
    node._write_sb(node.sb.with_flag(MdFlag.CONSISTENT))
    node.uptodate = True
    before = node.sb.generations
    node._peer_state({"role": "Secondary", "disk": "Diskless"})
    assert node.peer_disk is Disk.DISKLESS
    after = node.sb.generations
    assert after.current != before.current and after.bitmap == before.current
    assert not node.replicating  # writes are marked, not sent
    node._peer_state({"role": "Secondary", "disk": "Diskless"})  # said again: no new one
    assert node.sb.generations == after


def test_on_io_error_call_local_io_error_runs_the_handler_and_returns_the_error(
        node_on, caplog):
    from dataclasses import replace

    node = _primary_alone(node_on, "call-local-io-error")
    node.cfg = replace(node.cfg, handlers={"local-io-error": "true"})
    async def write_then_wait_for_the_handler() -> None:
        try:
            with pytest.raises(OSError):
                await node.write(0, b"w" * BLOCK_SIZE)
        finally:
            await asyncio.wait_for(asyncio.gather(*node._tasks), 30)

    with caplog.at_level("INFO", logger="vigil.volume"):
        asyncio.run(write_then_wait_for_the_handler())
    assert not node.diskless
    assert any("volume.handler" in r.getMessage() and "local-io-error" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_failed_flush_or_activity_log_write_detaches_too(node_on):
    node = _primary_alone(node_on, "detach")

    def broken_flush() -> None:
        raise OSError(errno.EIO, "Input/output error")

    node.backing.flush = broken_flush
    with pytest.raises(OSError):
        asyncio.run(node.flush())
    assert node.diskless and node.disk_failed


def test_a_failed_disk_attached_again_is_inconsistent_until_resynced(node_on):
    node = _primary_alone(node_on, "detach")
    path = node.backing.path

    def md_broken(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EIO, "Input/output error")

    node.md.write_superblock = node.md.write_bitmap = md_broken  # the metadata fails too
    with pytest.raises(OSError):
        asyncio.run(node.write(0, b"w" * BLOCK_SIZE))
    asyncio.run(node.demote())
    backing = BackingStore(path)
    md = MetadataStore.open(backing, "internal")
    assert md.read_superblock().flags & MdFlag.CONSISTENT  # its metadata did not say so
    node.attach(backing, md)
    assert node.disk is Disk.INCONSISTENT and not node.disk_failed
    assert not md.read_superblock().flags & MdFlag.CONSISTENT


def test_a_primary_attaches_under_it_only_with_an_up_to_date_peer_to_resync_from(node_on):
    node = _primary_alone(node_on, "detach")
    with pytest.raises(OSError):
        asyncio.run(node.write(0, b"w" * BLOCK_SIZE))  # the disk failed: diskless now
    assert node.diskless and node.role is Role.PRIMARY
    backing = BackingStore(node_on().backing.path)
    md = MetadataStore.open(backing, "internal")
    try:
        with pytest.raises(StateChangeRefused, match="UpToDate peer"):
            asyncio.run(node.attach_under_primary(backing, md))
        with pytest.raises(StateChangeRefused, match="attach_under_primary"):
            node.attach(backing, md)
        assert node.diskless
    finally:
        md.close()
        backing.close()


def test_the_resync_does_not_overwrite_blocks_a_primary_target_wrote_since_it_began(node_on):
    from vigil.replication.bitmap import Bitmap

    node = node_on()
    node.backing.write(0, b"N" * 4 * BLOCK_SIZE)  # what this node's application wrote
    node._fresh = Bitmap(node.bitmap.blocks)
    node._fresh.set_range(1, 3)  # blocks 1 and 2 written here since the resync began
    node._write_resync_data(0, b"R" * 4 * BLOCK_SIZE)
    assert node.backing.read(0, 4 * BLOCK_SIZE) == (
        b"R" * BLOCK_SIZE + b"N" * 2 * BLOCK_SIZE + b"R" * BLOCK_SIZE)
    node._fresh = None  # no primary target: written as sent
    node._write_resync_data(0, b"S" * 4 * BLOCK_SIZE)
    assert node.backing.read(0, 4 * BLOCK_SIZE) == b"S" * 4 * BLOCK_SIZE
