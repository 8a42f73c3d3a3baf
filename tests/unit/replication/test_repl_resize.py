"""Growing a volume: the size both nodes agree on, and the metadata's crash-safe move."""

from __future__ import annotations

import asyncio
import os

import pytest

from vigil.replication import messages
from vigil.replication.blockstore import (
    BackingStore,
    MetadataStore,
    create_md,
    read_known_size,
)
from vigil.replication.geometry import BLOCK_SIZE, external_capacity, internal_layout
from vigil.replication.resize import (
    Sizes,
    local_growth,
    negotiate,
    relocation_refusal,
)
from vigil.replication.wire import ProtocolError

MIB = 1 << 20


# -- negotiate ---------------------------------------------------------------------------------
def test_without_a_request_the_size_stays_even_when_both_disks_grew():
    assert negotiate(Sizes(64 * MIB, 96 * MIB), Sizes(64 * MIB, 128 * MIB)).size == 64 * MIB


def test_a_request_grows_both_to_the_smaller_capacity_on_either_side():
    mine, theirs = Sizes(64 * MIB, 96 * MIB, grow=True), Sizes(64 * MIB, 128 * MIB)
    assert negotiate(mine, theirs).size == negotiate(theirs, mine).size == 96 * MIB


def test_a_node_grown_alone_brings_its_peer_up_to_its_size_if_the_peer_has_room():
    assert negotiate(Sizes(64 * MIB, 64 * MIB), Sizes(96 * MIB, 96 * MIB)).refusal
    agreed = negotiate(Sizes(64 * MIB, 128 * MIB), Sizes(96 * MIB, 96 * MIB))
    assert agreed.size == 96 * MIB and not agreed.refusal


def test_no_side_ever_shrinks():
    refused = negotiate(Sizes(96 * MIB, 96 * MIB, grow=True), Sizes(64 * MIB, 80 * MIB))
    assert refused.refusal and "80" in refused.refusal.replace(str(80 * MIB), "80")


def test_resize_alone_needs_the_users_word_for_the_peer():
    assert local_growth(64 * MIB, 96 * MIB, False, False).refusal
    assert local_growth(64 * MIB, 96 * MIB, False, True).size == 96 * MIB
    assert local_growth(64 * MIB, 32 * MIB, False, True).size == 64 * MIB
    with pytest.raises(ValueError):
        local_growth(64 * MIB, 96 * MIB, True, True)


def test_metadata_moves_only_past_its_old_place():
    old = internal_layout(64 * MIB)
    assert "at least" in relocation_refusal(old, internal_layout(64 * MIB + 8192))
    assert relocation_refusal(old, internal_layout(65 * MIB)) == ""


def test_external_capacity_is_what_one_slot_describes():
    assert external_capacity(10 * MIB + 100) == 10 * MIB
    assert external_capacity(1 << 50) < 1 << 50
    assert external_capacity(1 << 50) % BLOCK_SIZE == 0


def test_params_check_the_new_fields():
    base = {"generations": [0, 0, 0, 0], "crashed_primary": False, "primary": False,
            "dirty": 0, "size": 4096, "protocol": "C"}
    messages.params({**base, "capacity": 8192, "grow": True})
    for bad in ({"capacity": -1}, {"capacity": "8192"}, {"capacity": 1 << 65},
                {"grow": 1}, {"grow": "yes"}):
        with pytest.raises(ProtocolError):
            messages.params({**base, **bad})


# -- the metadata on disk ----------------------------------------------------------------------
def _grow(path, size: int) -> None:
    os.truncate(path, size)


def _open(disk, known):
    backing = BackingStore(str(disk))
    return backing, MetadataStore.open(backing, "internal", known_size_file=known)


def test_metadata_of_a_disk_grown_while_down_is_found_through_the_known_size(tmp_path):
    disk, known = tmp_path / "disk.img", tmp_path / "lib" / "r0.lkbd"
    disk.write_bytes(b"")
    _grow(disk, 16 * MIB)
    sb = create_md(str(disk), known_size_file=known)
    assert read_known_size(known) == 16 * MIB
    _grow(disk, 32 * MIB)
    backing, md = _open(disk, known)
    try:
        assert md.stale and md.read_superblock().volume_id == sb.volume_id
        assert md.capacity == sb.data_size
        bitmap = md.read_bitmap(sb.data_size)
        bitmap.set_range(3, 9)
        md.relocate(md.grown_layout(backing.size), bitmap, md.read_superblock(), [1, 2])
        assert not md.stale and read_known_size(known) == 32 * MIB
    finally:
        md.close()
        backing.close()
    # found at the end now (even with the known-size file gone), bits and log moved along
    known.unlink()
    backing, md = _open(disk, None)
    try:
        assert not md.stale and md.capacity > 16 * MIB
        moved = md.read_superblock()
        assert moved.volume_id == sb.volume_id and moved.data_size == sb.data_size
        assert md.read_bitmap(moved.data_size).count == 6
        assert sorted(md.read_activity_log()) == [1, 2]
    finally:
        md.close()
        backing.close()


def test_a_move_cut_short_before_the_superblock_leaves_the_old_copy_in_charge(tmp_path):
    disk, known = tmp_path / "disk.img", tmp_path / "r0.lkbd"
    disk.write_bytes(b"")
    _grow(disk, 16 * MIB)
    sb = create_md(str(disk), known_size_file=known)
    _grow(disk, 32 * MIB)
    new = internal_layout(32 * MIB)
    with open(disk, "r+b") as raw:  # bitmap and log written, the superblock not yet
        raw.seek(new.bitmap_offset)
        raw.write(b"\xff" * 4096)
    backing, md = _open(disk, known)
    try:
        assert md.stale and md.read_superblock().volume_id == sb.volume_id
        assert md.read_bitmap(sb.data_size).count == 0
    finally:
        md.close()
        backing.close()


def test_a_shrunk_disk_is_refused_with_the_sizes(tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    _grow(disk, 32 * MIB)
    create_md(str(disk))
    backing = BackingStore(str(disk))
    md = MetadataStore.open(backing, "internal")
    try:
        sb = md.read_superblock()
        bitmap = md.read_bitmap(sb.data_size)
        smaller = internal_layout(20 * MIB)
        md.layout = smaller  # as if the metadata were found in a smaller disk
        from vigil.replication.blockstore import MetadataError
        md.write_superblock(sb)
        with pytest.raises(MetadataError, match="shrank"):
            md.read_superblock()
        assert bitmap.blocks == sb.data_size // BLOCK_SIZE
    finally:
        md.close()
        backing.close()


# -- the node ----------------------------------------------------------------------------------
def test_a_node_started_on_a_grown_disk_moves_its_metadata_but_keeps_its_size(node_on):
    node = node_on()
    size = node.size
    node = node_on(grow_to=40 * MIB)
    assert node.size == size and node.md.capacity > 32 * MIB and not node.md.stale


def test_resize_without_a_peer_grows_only_with_assume_peer_has_space(node_on):
    from vigil.replication.states import StateChangeRefused

    node = node_on()
    size = node.size
    _grow(node.backing.path, 48 * MIB)
    grown: list[int] = []
    node.on_resize = grown.append
    with pytest.raises(StateChangeRefused, match="assume-peer-has-space"):
        asyncio.run(node.resize())
    assert node.size == size and not grown
    said = asyncio.run(node.resize(assume_peer_has_space=True))
    assert node.size == node.md.capacity > 40 * MIB and grown == [node.size], said
    new_blocks = (node.size - size) // BLOCK_SIZE
    assert node.bitmap.count == new_blocks and node.bitmap.test(size // BLOCK_SIZE)
    assert not node.bitmap.test(size // BLOCK_SIZE - 1)
    on_disk = node.md.read_superblock()
    assert on_disk.data_size == node.size
    assert node.md.read_bitmap(on_disk.data_size).count == new_blocks
    assert "nothing to grow" in asyncio.run(node.resize(assume_peer_has_space=True))


def test_resize_refuses_a_growth_too_small_to_move_the_metadata(node_on):
    from vigil.replication.states import StateChangeRefused

    node = node_on()
    _grow(node.backing.path, 16 * MIB + 8192)
    with pytest.raises(StateChangeRefused, match="at least"):
        asyncio.run(node.resize(assume_peer_has_space=True))


def test_external_metadata_grows_in_its_slot(tmp_path):
    disk, meta = tmp_path / "disk.img", tmp_path / "meta.img"
    for path, size in ((disk, 16 * MIB), (meta, 256 * MIB)):
        path.write_bytes(b"")
        _grow(path, size)
    sb = create_md(str(disk), str(meta), index=1)
    _grow(disk, 48 * MIB)
    backing = BackingStore(str(disk))
    md = MetadataStore.open(backing, str(meta), 1)
    try:
        assert md.capacity == 48 * MIB and not md.stale
        on_disk = md.read_superblock()
        assert on_disk.data_size == sb.data_size == 16 * MIB
        # the slot stays where it was; only the bitmap's room grows
        old = md.layout
        new = md.grown_layout(64 * MIB)
        assert new is not None and new.superblock_offset == old.superblock_offset
        assert new.bitmap_offset == old.bitmap_offset and new.bitmap_size >= old.bitmap_size
        assert md.grown_layout(48 * MIB) is None
    finally:
        md.close()
        backing.close()
