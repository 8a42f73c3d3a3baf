"""A volume node on a file in tmp_path, for tests of its verbs without a peer."""

from __future__ import annotations

import os

import pytest

from vigil.lab.seed import lab_file
from vigil.replication import config
from vigil.replication.blockstore import BackingStore, MetadataStore, create_md

MIB = 1 << 20


@pytest.fixture
def node_on(tmp_path):
    from vigil.replication.node import Node

    opened = []

    def make(grow_to: int | None = None):
        disk, known = tmp_path / "a.img", tmp_path / "a.lkbd"
        if not disk.exists():
            disk.write_bytes(b"")
            os.truncate(disk, 16 * MIB)
            create_md(str(disk), known_size_file=known)
        if grow_to:
            os.truncate(disk, grow_to)
        text = lab_file("drbd-mysqldata.res").replace("/dev/vdb", str(disk))
        (tmp_path / "a.conf").write_text(text)
        cfg = config.load("mysqldata", tmp_path / "a.conf", "server5.example.com")
        backing = BackingStore(str(disk))
        md = MetadataStore.open(backing, "internal", known_size_file=known)
        opened.append((backing, md))
        return Node(cfg, backing, md, hostname="server5.example.com")

    yield make
    for backing, md in opened:
        md.close()
        backing.close()
