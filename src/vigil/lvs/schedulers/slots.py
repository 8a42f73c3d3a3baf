"""Fixed-size slot tables: weights as slot counts, filled Maglev-style, changed minimally.

A hash path (sh, dh, mh in userspace; every scheduler on the nftables kernel
paths) maps `hash(flow) mod size` to a slot and the slot to a destination.
The table size never changes, so a change of weights or destinations moves
only the slots it must:

* each destination gets exactly its share of slots (largest remainder of
  `size * weight / total`), so weights are honoured to 1/size;
* with a previous table, every slot whose owner stays and is not over its new
  share keeps its owner: removing a destination moves only its own slots, and
  adding one takes only the slots it is owed;
* free slots are filled by walking each destination's Maglev permutation
  (offset and skip from a stable hash of its address), one slot per turn, so
  a table built from nothing is Maglev's lookup table with exact weights;
* no slot is ever left empty while any destination has a weight above 0.

The fill is deterministic: two directors that see the same sequence of tables
build the same slots; one that starts fresh builds plain Maglev for the
current set (pass it the active director's previous slots to agree exactly).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from vigil.lvs.schedulers.base import stable_hash

K = TypeVar("K", bound=Hashable)

#: Default table size: a prime (Maglev needs one), IPVS mh's default too.
DEFAULT_SIZE = 4093


def shares(weights: Mapping[K, int], size: int) -> dict[K, int]:
    """Slots per destination: proportional to weight, summing to `size`."""
    live = {k: w for k, w in weights.items() if w > 0}
    total = sum(live.values())
    if total == 0:
        return {}
    ordered = sorted(live, key=_sort_key)
    exact = {k: size * live[k] / total for k in ordered}
    result = {k: int(exact[k]) for k in ordered}
    left = size - sum(result.values())
    by_remainder = sorted(ordered, key=lambda k: (-(exact[k] - result[k]), _sort_key(k)))
    for k in by_remainder[:left]:
        result[k] += 1
    return result


def _sort_key(key: object) -> str:
    return str(key)


def permutation(key: object, size: int) -> tuple[int, int]:
    """Maglev's (offset, skip) for one destination: its preference order of slots."""
    name = str(key).encode()
    offset = stable_hash(name, b"maglev-offset") % size
    skip = stable_hash(name, b"maglev-skip") % (size - 1) + 1
    return offset, skip


def fill_slots(
    weights: Mapping[K, int],
    size: int = DEFAULT_SIZE,
    previous: Sequence[K | None] | None = None,
) -> tuple[K, ...]:
    """The slot table for `weights` (empty when no weight is above 0)."""
    if size < 2:
        raise ValueError("a slot table needs at least 2 slots")
    quota = shares(weights, size)
    if not quota:
        return ()
    slots: list[K | None] = [None] * size
    owned: dict[K, int] = dict.fromkeys(quota, 0)
    if previous is not None and len(previous) == size:
        _keep_previous(previous, quota, slots, owned, size)
    _fill_free(quota, slots, owned, size)
    return tuple(slots)  # type: ignore[arg-type]


def _keep_previous(
    previous: Sequence[K | None],
    quota: Mapping[K, int],
    slots: list[K | None],
    owned: dict[K, int],
    size: int,
) -> None:
    """Keep previous owners up to their new share, giving up least-preferred slots first."""
    held: dict[K, list[int]] = {}
    for index, owner in enumerate(previous):
        if owner is not None and owner in quota:
            held.setdefault(owner, []).append(index)
    for owner, indexes in held.items():
        if len(indexes) > quota[owner]:
            indexes = _most_preferred(owner, indexes, quota[owner], size)
        for index in indexes:
            slots[index] = owner
        owned[owner] = len(indexes)


def _most_preferred(owner: object, indexes: list[int], count: int, size: int) -> list[int]:
    """The `count` slots of `indexes` that come first in the owner's permutation."""
    offset, skip = permutation(owner, size)
    inverse_skip = pow(skip, -1, size)
    # Position of slot i in the permutation: j with offset + j*skip = i (mod size).
    return sorted(indexes, key=lambda i: ((i - offset) * inverse_skip) % size)[:count]


def _fill_free(
    quota: Mapping[K, int], slots: list[K | None], owned: dict[K, int], size: int
) -> None:
    order = sorted(quota, key=_sort_key)
    cursor = dict.fromkeys(order, 0)
    perms = {k: permutation(k, size) for k in order}
    free = slots.count(None)
    while free:
        progressed = False
        for owner in order:
            if owned[owner] >= quota[owner]:
                continue
            offset, skip = perms[owner]
            j = cursor[owner]
            while True:
                index = (offset + j * skip) % size
                j += 1
                if slots[index] is None:
                    break
            cursor[owner] = j
            slots[index] = owner
            owned[owner] += 1
            free -= 1
            progressed = True
            if not free:
                break
        if not progressed:  # pragma: no cover - quotas always sum to size
            raise AssertionError("slot quotas do not cover the table")
