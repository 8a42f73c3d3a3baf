"""Which VIPs this director announces to its routers, and why: a pure decision.

Active-active directors share a VIP through ECMP: each one announces the VIP as
a host route (/32, /128) with BGP, and the router spreads flows over every
director that announces it. A director announces a VIP when

* it is the active director (a warm standby forwards nothing, so announces nothing),
* its table is settled (every check has run once: no half-built table takes traffic),
* it is not draining or stopping,
* and at least one real server of a service on that VIP is up;

and withdraws it as soon as one of these stops holding, with the cause typed
(`Cause`). A VIP withdrawn because its last real server went down comes back
only after `holddown` seconds (a flapping server would otherwise make the
router move flows back and forth); every other cause clears at once.

Pure: `Inputs` and `now` in; `Change`s out. The daemon writes the changes to the
BGP speaker (`vigil.director.speaker`); `next_deadline` says when a hold-down ends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Cause(StrEnum):
    """Why a VIP is announced (SERVING) or withdrawn (every other cause)."""

    SERVING = "serving"
    NOT_SETTLED = "not-settled"
    NO_HEALTHY_REAL = "no-healthy-real"
    HOLD_DOWN = "hold-down"
    DRAINING = "draining"
    STANDBY = "standby"
    STOPPING = "stopping"
    REMOVED = "removed"  # no service uses the VIP any more (a reload)


@dataclass(frozen=True)
class Inputs:
    """What the decision reads from the director at one moment."""

    #: reals up per VIP address, over every service on that address
    reals_up: Mapping[str, int]
    settled: bool = True
    active: bool = True
    draining: bool = False
    stopping: bool = False


@dataclass(frozen=True)
class Change:
    """Announce (`announce` true) or withdraw one VIP prefix."""

    prefix: str
    announce: bool
    cause: Cause

    @property
    def address(self) -> str:
        return self.prefix.split("/", 1)[0]


def host_prefix(address: str) -> str:
    """198.51.100.100 -> 198.51.100.100/32; 2001:db8::1 -> 2001:db8::1/128."""
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


@dataclass
class _Vip:
    announced: bool = False
    cause: Cause = Cause.NOT_SETTLED
    #: when a no-healthy-real withdraw happened (the hold-down counts from it)
    withdrawn_at: float | None = None


@dataclass
class AnnouncePolicy:
    """The announcement state of every VIP; `update` returns what must change."""

    holddown: float = 0.0
    _vips: dict[str, _Vip] = field(default_factory=dict)

    def cause_for(self, inputs: Inputs, address: str, now: float) -> Cause:
        if inputs.stopping:
            return Cause.STOPPING
        if not inputs.active:
            return Cause.STANDBY
        if inputs.draining:
            return Cause.DRAINING
        if not inputs.settled:
            return Cause.NOT_SETTLED
        if inputs.reals_up.get(address, 0) <= 0:
            return Cause.NO_HEALTHY_REAL
        vip = self._vips.get(address)
        if (vip is not None and vip.withdrawn_at is not None and not vip.announced
                and now < vip.withdrawn_at + self.holddown):
            return Cause.HOLD_DOWN
        return Cause.SERVING

    def update(self, inputs: Inputs, now: float) -> list[Change]:
        """The announcements and withdrawals that bring the state to `inputs`."""
        changes: list[Change] = []
        for address in sorted(set(inputs.reals_up) | set(self._vips)):
            vip = self._vips.setdefault(address, _Vip())
            if address in inputs.reals_up:
                cause = self.cause_for(inputs, address, now)
            else:
                cause = Cause.REMOVED
            announce = cause is Cause.SERVING
            if announce != vip.announced:
                changes.append(Change(host_prefix(address), announce, cause))
                if not announce and cause is Cause.NO_HEALTHY_REAL:
                    vip.withdrawn_at = now
            if announce:
                vip.withdrawn_at = None
            vip.announced, vip.cause = announce, cause
            if cause is Cause.REMOVED:
                del self._vips[address]
        return changes

    def withdraw_all(self, cause: Cause) -> list[Change]:
        """Every announced VIP withdrawn (a stop, the speaker going away)."""
        changes = [Change(host_prefix(a), False, cause)
                   for a, vip in sorted(self._vips.items()) if vip.announced]
        for vip in self._vips.values():
            vip.announced, vip.cause = False, cause
        return changes

    def next_deadline(self) -> float | None:
        """When a hold-down ends (then `update` may announce again)."""
        ends = [vip.withdrawn_at + self.holddown for vip in self._vips.values()
                if vip.withdrawn_at is not None and not vip.announced]
        return min(ends) if ends and self.holddown > 0 else None

    def announced(self) -> list[str]:
        return [host_prefix(a) for a, vip in sorted(self._vips.items()) if vip.announced]

    def snapshot(self) -> list[dict[str, object]]:
        """Per VIP: its prefix, announced or not, and why; for status and metrics."""
        return [{"vip": address, "prefix": host_prefix(address), "announced": vip.announced,
                 "cause": str(vip.cause)} for address, vip in sorted(self._vips.items())]


def nat_problems(services: Iterable[tuple[str, Iterable[tuple[str, str]]]]) -> list[str]:
    """Why NAT cannot run active-active: one line per (service, masq real server), from
    (service label, (real label, forwarding method) per real) per service. A reply must
    come back through the director that translated it, and directors that share no
    connection tracking cannot undo each other's translations."""
    return [f"{service} -> {real} uses NAT (masq)"
            for service, reals in services for real, forward in reals if forward == "masq"]


def reals_up(services: Iterable[tuple[str, Iterable[bool]]]) -> dict[str, int]:
    """{VIP address: real servers up} from (address, up flags per real) per service;
    services without an address (firewall marks) cannot be announced and are skipped."""
    counts: dict[str, int] = {}
    for address, ups in services:
        if not address:
            continue
        counts[address] = counts.get(address, 0) + sum(1 for up in ups if up)
    return counts
