"""The LVS direct-routing real server: accept the VIP's traffic, never answer ARP for it.

What the seed's `realserver.sh` does by hand, done right: the VIP goes on `lo`
as a host address (/32, /128), `arp_ignore=1` and `arp_announce=2` are set on
`all` and on each real interface (the per-interface value wins when it is
higher, so `all` alone is not enough), the values found before are remembered
and given back when the last VIP stops (the script forced them to 0), every
step is idempotent, and a VIP that already sits on a real interface is refused:
it would poison the clients' and the gateway's ARP tables.

IPv6 needs no sysctl: Linux answers neighbour solicitations only for addresses
of the interface they arrive on, so a VIP on `lo` stays silent.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.errors import UsageError, VigilError
from vigil.kernel.netlink import iproute

STATE_DIR = Path("/var/lib/vigil/realserver")
#: The least each setting must be. The kernel uses the larger of `all` and the
#: interface's value, and any arp_ignore of 1 or more already keeps a VIP on
#: `lo` silent, so a stricter value found in place is left alone.
ARP_SETTINGS = {"arp_ignore": 1, "arp_announce": 2}
SYSCTL_ROOT = Path("/proc/sys/net/ipv4/conf")
LOOPBACK_LABEL = "lo:0"


class RealServerError(VigilError):
    """The real-server set-up cannot be applied as asked."""


@dataclass(frozen=True)
class RealServerStatus:
    vip: str
    vip_on_loopback: bool
    sysctls: dict[str, str]  # "eth0/arp_ignore" -> "1"
    configured: bool  # started by vigil and not stopped since

    @property
    def running(self) -> bool:
        if not self.vip_on_loopback:
            return False
        if not self.is_ipv4:
            return True
        return all(
            _satisfies(self.sysctls.get(f"{iface}/{key}"), least)
            for iface in self.interfaces()
            for key, least in ARP_SETTINGS.items()
        )

    @property
    def is_ipv4(self) -> bool:
        return ipaddress.ip_address(self.vip).version == 4

    def interfaces(self) -> list[str]:
        return sorted({name.split("/")[0] for name in self.sysctls})

    def to_json(self) -> dict[str, Any]:
        return {
            "vip": self.vip,
            "running": self.running,
            "vip_on_loopback": self.vip_on_loopback,
            "configured": self.configured,
            "sysctls": self.sysctls,
        }


def _satisfies(value: str | None, least: int) -> bool:
    return value is not None and value.isdigit() and int(value) >= least


def _parse_vip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        raise UsageError(f"--vip {text!r} is not an IP address") from None


class RealServer:
    """Apply, undo and inspect the real-server settings for one VIP on this host."""

    def __init__(
        self,
        vip: str,
        devices: Sequence[str] | None = None,
        state_dir: Path = STATE_DIR,
        sysctl_root: Path = SYSCTL_ROOT,
    ):
        self.vip = _parse_vip(vip)
        self.devices = list(devices) if devices else None
        self.state_dir = state_dir
        self.sysctl_root = sysctl_root

    # -- kernel state ------------------------------------------------------------------------
    @property
    def prefixlen(self) -> int:
        return 32 if self.vip.version == 4 else 128

    def _links(self) -> dict[int, str]:
        with iproute() as ipr:
            return {link["index"]: link.get("ifname") for link in ipr.get_links()}

    def _holders(self) -> list[tuple[str, int]]:
        """(interface, prefix length) of every local address equal to the VIP."""
        links = self._links()
        family = 2 if self.vip.version == 4 else 10
        with iproute() as ipr:
            found = []
            for addr in ipr.get_addr(family=family):
                if addr.get("IFA_ADDRESS") == str(self.vip):
                    found.append((links.get(addr["index"], "?"), addr["prefixlen"]))
            return found

    def _interfaces(self) -> list[str]:
        """`all` plus each real interface (or the ones named with --dev)."""
        if self.devices:
            known = set(self._links().values())
            missing = [d for d in self.devices if d not in known]
            if missing:
                raise UsageError(f"no interface {', '.join(missing)} on this host")
            return ["all", *self.devices]
        real = sorted(name for name in self._links().values() if name and name != "lo")
        return ["all", *real]

    def _read_sysctl(self, iface: str, key: str) -> str | None:
        try:
            return (self.sysctl_root / iface / key).read_text().strip()
        except OSError:
            return None

    def _write_sysctl(self, iface: str, key: str, value: str) -> None:
        path = self.sysctl_root / iface / key
        try:
            path.write_text(value + "\n")
        except OSError as exc:
            raise RealServerError(f"cannot set {path}: {exc.strerror}") from None

    def _current_sysctls(self, interfaces: Sequence[str]) -> dict[str, str]:
        values = {}
        for iface in interfaces:
            for key in ARP_SETTINGS:
                value = self._read_sysctl(iface, key)
                if value is not None:
                    values[f"{iface}/{key}"] = value
        return values

    # -- remembered state ----------------------------------------------------------------------
    @property
    def _vip_file(self) -> Path:
        return self.state_dir / f"vip-{self.vip}.json"

    @property
    def _saved_sysctls_file(self) -> Path:
        return self.state_dir / "saved-sysctls.json"

    def _active_vips(self) -> list[Path]:
        return sorted(self.state_dir.glob("vip-*.json")) if self.state_dir.exists() else []

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(temporary, path)

    # -- operations ------------------------------------------------------------------------------
    def start(self) -> list[str]:
        """Apply the settings; returns what was changed (empty when already in place)."""
        elsewhere = [(i, p) for i, p in self._holders() if i != "lo"]
        if elsewhere:
            iface, prefix = elsewhere[0]
            raise RealServerError(
                f"{self.vip}/{prefix} is on {iface}: a real server must not hold the VIP on "
                "a real interface (it would answer ARP for it); remove it first"
            )
        changes: list[str] = []
        if self.vip.version == 4:
            interfaces = self._interfaces()
            if not self._saved_sysctls_file.exists():
                self._write_json(self._saved_sysctls_file, self._current_sysctls(interfaces))
            for iface in interfaces:
                for key, least in ARP_SETTINGS.items():
                    if not _satisfies(self._read_sysctl(iface, key), least):
                        self._write_sysctl(iface, key, str(least))
                        changes.append(f"{iface}/{key}={least}")
        on_loopback = ("lo", self.prefixlen) in self._holders()
        if not self._vip_file.exists():
            self._write_json(self._vip_file, {"vip": str(self.vip), "was_on_lo": on_loopback})
        if not on_loopback:
            self._add_vip()
            changes.append(f"{self.vip}/{self.prefixlen} on lo")
        return changes

    def _add_vip(self) -> None:
        with iproute() as ipr:
            lo = ipr.link_lookup(ifname="lo")[0]
            extra: dict[str, Any] = {"label": LOOPBACK_LABEL} if self.vip.version == 4 else {}
            ipr.addr("add", index=lo, address=str(self.vip), prefixlen=self.prefixlen, **extra)

    def stop(self) -> list[str]:
        """Undo `start`: VIP off lo, previous ARP settings back once no VIP is left."""
        changes: list[str] = []
        was_on_lo = False
        if self._vip_file.exists():
            was_on_lo = json.loads(self._vip_file.read_text()).get("was_on_lo", False)
        if ("lo", self.prefixlen) in self._holders() and not was_on_lo:
            with iproute() as ipr:
                lo = ipr.link_lookup(ifname="lo")[0]
                ipr.addr("del", index=lo, address=str(self.vip), prefixlen=self.prefixlen)
            changes.append(f"{self.vip}/{self.prefixlen} off lo")
        self._vip_file.unlink(missing_ok=True)
        if not self._active_vips() and self._saved_sysctls_file.exists():
            saved = json.loads(self._saved_sysctls_file.read_text())
            for name, value in saved.items():
                iface, key = name.split("/")
                if self._read_sysctl(iface, key) not in (None, value):
                    self._write_sysctl(iface, key, value)
                    changes.append(f"{iface}/{key}={value}")
            self._saved_sysctls_file.unlink()
        return changes

    def status(self) -> RealServerStatus:
        interfaces = self._interfaces() if self.vip.version == 4 else []
        return RealServerStatus(
            vip=str(self.vip),
            vip_on_loopback=("lo", self.prefixlen) in self._holders(),
            sysctls=self._current_sysctls(interfaces),
            configured=self._vip_file.exists(),
        )
