"""detach and attach on one node: what a diskless node refuses, and what its peer does."""

from __future__ import annotations

import asyncio

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


def test_a_primary_does_not_detach(node_on):
    node = node_on()
    node._write_sb(node.sb.with_flag(MdFlag.CONSISTENT))
    asyncio.run(node.promote(force=True))
    assert node.role is Role.PRIMARY
    with pytest.raises(StateChangeRefused, match="demote first"):
        asyncio.run(node.detach())
    assert not node.diskless


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
