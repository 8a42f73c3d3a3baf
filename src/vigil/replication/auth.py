"""Peer authentication: DRBD's cram-hmac-alg / shared-secret challenge-response (pure).

Each side sends a random challenge and answers the other's with
HMAC(secret, role + challenge). The role byte (connecting or accepting side)
and the refusal of a challenge equal to one's own stop a peer from reflecting
our own challenge back at us.
"""

from __future__ import annotations

import hashlib
import hmac

from vigil.config.drbd import HMAC_ALGORITHMS

CHALLENGE_SIZE = 32


def algorithm(name: str) -> str:
    """hashlib's name of a cram-hmac-alg (the parser refuses every other name)."""
    digest = name.lower()
    if digest not in HMAC_ALGORITHMS or digest not in hashlib.algorithms_available:
        raise ValueError(f"cram-hmac-alg {name!r} is not supported "
                         f"(use one of {', '.join(HMAC_ALGORITHMS)})")
    return digest


def response(secret: bytes, challenge: bytes, alg: str, role: bytes) -> bytes:
    return hmac.new(secret, role + challenge, algorithm(alg)).digest()


def verify(secret: bytes, my_challenge: bytes, answer: bytes, alg: str, peer_role: bytes) -> bool:
    expected = response(secret, my_challenge, alg, peer_role)
    return hmac.compare_digest(expected, answer)


def acceptable_challenge(mine: bytes, theirs: bytes) -> bool:
    return len(theirs) >= 16 and theirs != mine
