"""A loop device is vigil's only while it points at vigil's file and holds vigil's tag.

The device and inode numbers of the backing file are not enough: behind a
volume's loop device is a FUSE mount, whose anonymous device number the kernel
hands to the next FUSE mount once it is gone (a lab running beside this one
mounted one with the same number, and its loop device passed for ours).
"""

from __future__ import annotations

import dataclasses
import os

import pytest

from vigil.replication import loopdev

pytestmark = pytest.mark.lab


def test_a_loop_device_with_our_numbers_but_another_tag_is_not_ours(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("attaching a loop device needs root")
    backing = tmp_path / "backing.img"
    backing.write_bytes(bytes(1 << 20))
    identity, fd = loopdev.attach(str(backing), direct_io=False)
    try:
        assert identity.tag.startswith("vigil-") and len(identity.tag) > 12
        assert loopdev.is_ours(identity)
        stranger = dataclasses.replace(identity, tag="vigil-0123456789abcdef")
        assert not loopdev.is_ours(stranger)
        assert loopdev.force_detach(stranger)  # "gone" as far as it knows: left alone
        assert loopdev.is_ours(identity)
    finally:
        assert loopdev.release(identity, fd)
    assert not loopdev.is_ours(identity)
