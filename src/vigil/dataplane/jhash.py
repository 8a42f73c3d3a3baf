"""The kernel's `jhash` and nftables' `jhash ... mod N seed S`, bit for bit.

The data path picks a slot with nftables' jhash expression; this module
computes the same slot in Python, so a tool (or a test) can say which real
server a given client address and port reaches without asking the kernel.
nftables hashes the expression's registers: each part of a concatenation is
padded with zeros to 4 bytes, and "mod N" is `reciprocal_scale`, not `%`.
"""

from __future__ import annotations

import ipaddress

JHASH_INITVAL = 0xDEADBEEF
_MASK = 0xFFFFFFFF


def _rol(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _MASK; a ^= _rol(c, 4); c = (c + b) & _MASK  # noqa: E702
    b = (b - a) & _MASK; b ^= _rol(a, 6); a = (a + c) & _MASK  # noqa: E702
    c = (c - b) & _MASK; c ^= _rol(b, 8); b = (b + a) & _MASK  # noqa: E702
    a = (a - c) & _MASK; a ^= _rol(c, 16); c = (c + b) & _MASK  # noqa: E702
    b = (b - a) & _MASK; b ^= _rol(a, 19); a = (a + c) & _MASK  # noqa: E702
    c = (c - b) & _MASK; c ^= _rol(b, 4); b = (b + a) & _MASK  # noqa: E702
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c ^= b; c = (c - _rol(b, 14)) & _MASK  # noqa: E702
    a ^= c; a = (a - _rol(c, 11)) & _MASK  # noqa: E702
    b ^= a; b = (b - _rol(a, 25)) & _MASK  # noqa: E702
    c ^= b; c = (c - _rol(b, 16)) & _MASK  # noqa: E702
    a ^= c; a = (a - _rol(c, 4)) & _MASK  # noqa: E702
    b ^= a; b = (b - _rol(a, 14)) & _MASK  # noqa: E702
    c ^= b; c = (c - _rol(b, 24)) & _MASK  # noqa: E702
    return c


def jhash(data: bytes, initval: int) -> int:
    """include/linux/jhash.h `jhash()` (little-endian words, as on x86 and arm64)."""
    length = len(data)
    a = b = c = (JHASH_INITVAL + length + initval) & _MASK
    offset = 0
    while length > 12:
        a = (a + int.from_bytes(data[offset:offset + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[offset + 4:offset + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[offset + 8:offset + 12], "little")) & _MASK
        a, b, c = _mix(a, b, c)
        length -= 12
        offset += 12
    if length == 0:
        return c
    tail = data[offset:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    return _final(a, b, c)


def reciprocal_scale(value: int, modulus: int) -> int:
    return (value * modulus) >> 32


def register_bytes(*parts: bytes) -> bytes:
    """A concatenation as nftables lays it out in registers: each part padded to 4 bytes."""
    out = b""
    for part in parts:
        out += part + bytes(-len(part) % 4)
    return out


def nft_jhash(parts: tuple[bytes, ...], modulus: int, seed: int) -> int:
    """`jhash PART . PART ... mod MODULUS seed SEED` as the kernel evaluates it."""
    return reciprocal_scale(jhash(register_bytes(*parts), seed), modulus)


def address(text: str, prefix: int | None = None) -> bytes:
    """An address in network order, optionally masked (`ip saddr & MASK`)."""
    ip = ipaddress.ip_address(text)
    if prefix is None:
        return ip.packed
    network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    return network.network_address.packed


def port(number: int) -> bytes:
    return number.to_bytes(2, "big")
