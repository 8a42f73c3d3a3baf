"""The lab's delay fault: a host's frames held in the switch for a set time.

netem would do it on the host's interface, but this kernel has no `sch_netem`.
So the host's switch port leaves its bridge, a veth pair takes its place there,
and `vigil.testing.delay_relay` carries every frame between the port and the
pair's other end `seconds` late, both ways: ARP as well as IP, as netem would.
Undoing it puts the port back on its bridge and removes the pair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vigil.kernel.netlink import iproute
from vigil.lab.host import LabError

#: how long the relay may take to open its sockets
START_DEADLINE = 10.0
#: the largest delay the lab gives (frames held in memory meanwhile)
MAX_DELAY = 60.0


@dataclass(frozen=True)
class Detour:
    """One delayed port: the bridge it left, and the veth pair that stands in for it."""

    port: str
    bridge: str
    #: the pair's end the relay writes to and reads from
    relay_end: str
    #: the pair's end on the bridge, where the port was
    bridge_end: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Detour:
        return cls(**{k: str(data[k]) for k in ("port", "bridge", "relay_end", "bridge_end")})


def relay_argv(python: str, detour: Detour, seconds: float) -> list[str]:
    if not 0 < seconds <= MAX_DELAY:
        raise LabError(f"a delay must be more than 0 and at most {MAX_DELAY:g} s, "
                       f"not {seconds:g}")
    return [python, "-m", "vigil.testing.delay_relay", detour.port, detour.relay_end,
            f"{seconds:g}"]


def detour_for(switch: Path, port: str, index: int) -> Detour:
    """The detour of `port` (on its bridge now); names short and free in the switch."""
    with iproute(switch) as ipr:
        found = ipr.link_lookup(ifname=port)
        if not found:
            raise LabError(f"no switch port {port}")
        master = ipr.get_links(found[0])[0].get("IFLA_MASTER")
        if not master:
            raise LabError(f"switch port {port} is on no bridge (already delayed?)")
        bridge = ipr.get_links(master)[0].get("IFLA_IFNAME")
    return Detour(port, bridge, f"dly{index}r", f"dly{index}b")


def build(switch: Path, detour: Detour) -> None:
    """The veth pair, up, its bridge end not yet on the bridge."""
    with iproute(switch) as ipr:
        ipr.link("add", ifname=detour.relay_end, kind="veth", peer=detour.bridge_end)
        for name in (detour.relay_end, detour.bridge_end):
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")


def swap_in(switch: Path, detour: Detour) -> None:
    """The port off its bridge, the pair's end on it (the relay already carries)."""
    with iproute(switch) as ipr:
        bridge = ipr.link_lookup(ifname=detour.bridge)[0]
        ipr.link("set", index=ipr.link_lookup(ifname=detour.port)[0], master=0)
        ipr.link("set", index=ipr.link_lookup(ifname=detour.bridge_end)[0], master=bridge)


def swap_out(switch: Path, detour: Detour) -> None:
    """The port back on its bridge and the pair gone; what no longer exists is skipped."""
    with iproute(switch) as ipr:
        bridges = ipr.link_lookup(ifname=detour.bridge)
        ends = ipr.link_lookup(ifname=detour.relay_end)
        if ends:
            ipr.link("del", index=ends[0])
        ports = ipr.link_lookup(ifname=detour.port)
        if ports and bridges:
            ipr.link("set", index=ports[0], master=bridges[0])
