"""Block digests of verify-alg, csums-alg and data-integrity-alg (pure).

Every digest is DIGEST_BYTES long on the wire whatever the algorithm (a longer
one is cut, CRC-32's four bytes are padded with zeros), so requests have one
layout; both nodes must name the same algorithm, which the handshake checks.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable

from vigil.config.drbd import DIGEST_ALGORITHMS
from vigil.replication.wire import DIGEST_BYTES

Digester = Callable[[bytes | bytearray | memoryview], bytes]


@functools.lru_cache(maxsize=32)
def digester(name: str) -> Digester:
    """The digest function DRBD's `name` stands for (ValueError for an unknown name)."""
    implementation = DIGEST_ALGORITHMS.get(name.lower())
    if implementation is None:
        raise ValueError(f"digest {name!r} is not supported "
                         f"(use one of {', '.join(DIGEST_ALGORITHMS)})")
    if implementation == "crc32":
        def crc(data: bytes | bytearray | memoryview) -> bytes:
            return zlib.crc32(data).to_bytes(4, "big").ljust(DIGEST_BYTES, b"\0")
        return crc

    def digest(data: bytes | bytearray | memoryview) -> bytes:
        return hashlib.new(implementation, data).digest()[:DIGEST_BYTES].ljust(
            DIGEST_BYTES, b"\0")
    return digest
