"""The kernel's jhash in Python: published lookup3 vectors and nftables' layout."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_support import ENV, RS1, RS2, seed_table

from vigil.dataplane import jhash
from vigil.dataplane.plan import build_plan, owner_of, slot_of


def test_lookup3_vectors():
    # Bob Jenkins' lookup3.c driver5() expectations; the kernel's jhash is hashlittle.
    assert jhash.jhash(b"", 0) == 0xDEADBEEF
    assert jhash.jhash(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert jhash.jhash(b"Four score and seven years ago", 0) == 0x17770551
    assert jhash.jhash(b"Four score and seven years ago", 1) == 0xCD628161


def test_registers_pad_each_part_to_four_bytes():
    assert jhash.register_bytes(b"\xc6\x33\x64\x0a", b"\x9c\x40") == \
        b"\xc6\x33\x64\x0a\x9c\x40\x00\x00"
    assert len(jhash.register_bytes(bytes(16), b"\x00\x50")) == 20
    assert jhash.reciprocal_scale(0xFFFFFFFF, 4093) == 4092
    assert jhash.address("198.51.100.77", 24) == bytes([198, 51, 100, 0])


def test_slots_match_what_the_kernel_picked():
    # Observed in the lab (tests/lab/dataplane checks it live): the client
    # 198.51.100.10 from ports 40000.. through the seed's service.
    service = build_plan(seed_table(), ENV).services[0]
    assert service.seed == 0x94225775
    assert [slot_of(service, "198.51.100.10", p) for p in range(40000, 40010)] == \
        [1406, 2400, 3772, 2601, 2308, 463, 2237, 713, 1765, 85]
    owners = "".join("1" if owner_of(service, "198.51.100.10", p).address == RS1 else "2"
                     for p in range(40000, 40040))
    assert owners == "2112122111112112211211111222121121221111"
    assert {owner_of(service, "198.51.100.10", p).address for p in range(40000, 40040)} \
        == {RS1, RS2}
