"""`vigil volume adjust`: what a changed resource file means for a running volume (pure).

drbdadm adjust compares the file with what the kernel runs and applies the
difference. Here the comparison is field by field of the two `VolumeConfig`s:
handlers, fencing, after-sb policies, the link timers, the resync rate and the
startup section take effect at once (timers and rates from the next connection
or resync); what the handshake negotiates (addresses, protocol, secret,
two-primaries, verify-alg, csums-alg, data-integrity-alg) and the socket buffers
(sndbuf-size, rcvbuf-size, max-buffers) take a reconnect,
which adjust does, as drbdadm's does; what the device is made of (disk,
meta-disk, device, activity-log size) and the addresses (which side connects,
whom it accepts) take `down` and `up`, so adjust refuses the whole change and
says which field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

from vigil.replication.config import VolumeConfig

#: fields that are the device itself: only down + up changes them
RESTART_FIELDS = frozenset({"name", "al_extents", "peer"})
#: fields the handshake negotiates: applied by reconnecting
RECONNECT_FIELDS = frozenset({"protocol", "shared_secret", "cram_hmac_alg",
                              "allow_two_primaries", "verify_alg", "csums_alg",
                              "integrity_alg", "buffers"})
#: neither compared nor applied (where the file was read, its warnings)
IGNORED_FIELDS = frozenset({"source", "warnings"})


@dataclass(frozen=True)
class AdjustPlan:
    """What changed, in `field: old -> new` words, sorted by what applying it takes."""

    live: tuple[str, ...] = ()
    reconnect: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.live or self.reconnect or self.restart)


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _said(name: str, old: Any, new: Any) -> str:
    if name == "shared_secret":
        return "shared-secret changed"
    return f"{name}: {_show(old)} -> {_show(new)}"


def plan(running: VolumeConfig, wanted: VolumeConfig) -> AdjustPlan:
    """Every difference between the running configuration and the file's."""
    live: list[str] = []
    reconnect: list[str] = []
    restart: list[str] = []
    for item in fields(VolumeConfig):
        name = item.name
        old, new = getattr(running, name), getattr(wanted, name)
        if name in IGNORED_FIELDS or old == new:
            continue
        if name == "local":
            for part in fields(type(old)):
                a, b = getattr(old, part.name), getattr(new, part.name)
                if a != b:  # the device, or the address it listens on
                    restart.append(_said(f"local.{part.name}", a, b))
            continue
        if name in RESTART_FIELDS:
            restart.append(_said(name, old, new))
        elif name in RECONNECT_FIELDS:
            reconnect.append(_said(name, old, new))
        else:
            live.append(_said(name, old, new))
    return AdjustPlan(tuple(live), tuple(reconnect), tuple(restart))
