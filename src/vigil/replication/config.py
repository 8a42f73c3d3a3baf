"""A replicated volume's settings, and where they come from.

`VolumeConfig` is what the replication core needs, in plain units (bytes,
seconds). It is built from a DRBD resource file (`resource NAME { ... }` with
`on HOST { device; disk; address; meta-disk; }` and net/disk/handlers
sections) by `from_resource`. Until the shared DRBD parser
(`vigil.config.drbd`) is on main, `resfile` is a minimal reader of that
syntax; `load` is the adapter that hides which one is used.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import ConfigError, Location, UsageError
from vigil.replication.completion import Protocol
from vigil.replication.rate import RateSettings
from vigil.replication.split_brain import Policies
from vigil.replication.timers import LinkSettings

DEFAULT_PORT = 7788
DEFAULT_CONFIG = Path("/etc/drbd.conf")
SECTOR = 512


@dataclass(frozen=True)
class Endpoint:
    host: str  # the `on` name (uname -n)
    address: str
    port: int
    device: str
    disk: str
    meta_disk: str = "internal"
    meta_index: int = 0

    @property
    def internal_metadata(self) -> bool:
        return self.meta_disk == "internal"


@dataclass(frozen=True)
class VolumeConfig:
    name: str
    local: Endpoint
    peer: Endpoint
    protocol: Protocol = Protocol.C
    shared_secret: str = ""
    cram_hmac_alg: str = "sha1"
    allow_two_primaries: bool = False
    verify_alg: str = "sha256"
    policies: Policies = field(default_factory=Policies)
    link: LinkSettings = field(default_factory=LinkSettings)
    rate: RateSettings = field(default_factory=RateSettings)
    al_extents: int = 1237
    fencing: str = "dont-care"
    handlers: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def run_dir(self) -> Path:
        return Path("/run/vigil/volume") / self.name

    @property
    def i_connect(self) -> bool:
        """The node with the lower address connects; the other accepts (no duplicate links)."""
        mine = (ipaddress.ip_address(self.local.address), self.local.port)
        theirs = (ipaddress.ip_address(self.peer.address), self.peer.port)
        return mine < theirs


def parse_size(text: str, default_unit: int = 1, where: Location | None = None) -> int:
    """DRBD sizes: a number with an optional K/M/G/T suffix (s = 512-byte sectors)."""
    units = {"": default_unit, "s": SECTOR, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
             "t": 1 << 40}
    number = text.rstrip("kKmMgGtTsS")
    suffix = text[len(number):].lower()
    if suffix.endswith("b") and len(suffix) > 1:
        suffix = suffix[:-1]
    try:
        return int(float(number) * units[suffix])
    except (ValueError, KeyError):
        raise ConfigError(where or Location("?"), f"not a size: {text!r}") from None


def _tenths(value: str) -> float:
    return float(value) / 10.0


def from_resource(resource: dict[str, Any], hostname: str) -> VolumeConfig:
    """Build a config from a parsed resource (the adapter's neutral dict form).

    `resource` has: name, location (Location), sections {"net": {...}, "disk":
    {...}, "handlers": {...}, "startup": {...}}, top-level options (protocol),
    and hosts {name: {device, disk, address, meta-disk}}.
    """
    name = resource["name"]
    where: Location = resource.get("location", Location("?"))
    hosts: dict[str, dict[str, str]] = resource["hosts"]
    short = hostname.split(".")[0]
    local_name = next((h for h in hosts if h in (hostname, short)), None)
    if local_name is None:
        known = ", ".join(hosts) or "none"
        raise ConfigError(where, f"resource {name} has no 'on {hostname}' section "
                          f"(hosts: {known})")
    peers = [h for h in hosts if h != local_name]
    if len(peers) != 1:
        raise ConfigError(where, f"resource {name} must name exactly two hosts")
    endpoints = {h: _endpoint(h, hosts[h], where) for h in (local_name, peers[0])}
    net = resource["sections"].get("net", {})
    disk = resource["sections"].get("disk", {})
    handlers = dict(resource["sections"].get("handlers", {}))
    options = resource.get("options", {})
    protocol_text = net.get("protocol", options.get("protocol", "C"))
    try:
        protocol = Protocol.parse(protocol_text)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None
    link = LinkSettings(
        connect_int=float(net.get("connect-int", 10)),
        ping_int=float(net.get("ping-int", 10)),
        ping_timeout=_tenths(net.get("ping-timeout", "5")),
        timeout=_tenths(net.get("timeout", "60")),
        ko_count=int(net.get("ko-count", 7)),
    )
    defaults = RateSettings()
    rate = RateSettings(
        resync_rate=parse_size(disk.get("resync-rate", disk.get("rate", "")) or "0", 1024)
        or defaults.resync_rate,
        c_plan_ahead=_tenths(disk["c-plan-ahead"]) if "c-plan-ahead" in disk
        else defaults.c_plan_ahead,
        c_fill_target=parse_size(disk["c-fill-target"], SECTOR) if "c-fill-target" in disk
        else defaults.c_fill_target,
        c_delay_target=_tenths(disk["c-delay-target"]) if "c-delay-target" in disk
        else defaults.c_delay_target,
        c_max_rate=parse_size(disk["c-max-rate"], 1024) if "c-max-rate" in disk
        else defaults.c_max_rate,
        c_min_rate=parse_size(disk["c-min-rate"], 1024) if "c-min-rate" in disk
        else defaults.c_min_rate,
    )
    policies = Policies(
        after_sb_0pri=net.get("after-sb-0pri", "disconnect"),
        after_sb_1pri=net.get("after-sb-1pri", "disconnect"),
        after_sb_2pri=net.get("after-sb-2pri", "disconnect"),
    )
    secret = net.get("shared-secret", "")
    if len(secret) > 64:
        raise ConfigError(where, "shared-secret is longer than 64 characters")
    return VolumeConfig(
        name=name,
        local=endpoints[local_name],
        peer=endpoints[peers[0]],
        protocol=protocol,
        shared_secret=secret,
        cram_hmac_alg=net.get("cram-hmac-alg", "sha1"),
        allow_two_primaries=_boolean(net.get("allow-two-primaries", "no")),
        verify_alg=net.get("verify-alg", "sha256"),
        policies=policies,
        link=link,
        rate=rate,
        al_extents=int(disk.get("al-extents", 1237)),
        fencing=disk.get("fencing", net.get("fencing", "dont-care")),
        handlers=handlers,
        source=str(where),
    )


def _boolean(text: str) -> bool:
    return text.lower() in ("", "yes", "true", "on")


def _endpoint(host: str, fields: dict[str, str], where: Location) -> Endpoint:
    missing = [k for k in ("device", "disk", "address") if k not in fields]
    if missing:
        raise ConfigError(where, f"'on {host}' lacks {', '.join(missing)}")
    address = fields["address"].split()[-1]  # "ipv4 1.2.3.4:7789" or "1.2.3.4:7789"
    host_part, _, port = address.rpartition(":")
    if not host_part:
        host_part, port = address, str(DEFAULT_PORT)
    host_part = host_part.strip("[]")
    try:
        ipaddress.ip_address(host_part)
        port_number = int(port)
    except ValueError:
        raise ConfigError(where, f"'on {host}': bad address {address!r}") from None
    meta = fields.get("meta-disk", "internal").split()
    meta_disk = meta[0]
    index = 0
    if len(meta) > 1:
        index = int(meta[1].strip("[]"))
    elif "[" in meta_disk:
        meta_disk, _, rest = meta_disk.partition("[")
        index = int(rest.rstrip("]"))
    device = fields["device"].split()[0]
    return Endpoint(host, host_part, port_number, device, fields["disk"], meta_disk, index)


def load(name: str, config_path: str | os.PathLike[str] | None = None,
         hostname: str | None = None) -> VolumeConfig:
    """The named resource, for this host, from the DRBD configuration."""
    from vigil.replication import resfile

    path = Path(config_path) if config_path else _default_path()
    resources = resfile.read(path)
    if name not in resources:
        known = ", ".join(sorted(resources)) or "none"
        raise UsageError(f"'{name}' not defined in {path} (resources: {known})")
    return from_resource(resources[name], hostname or os.uname().nodename)


def resource_names(config_path: str | os.PathLike[str] | None = None) -> list[str]:
    from vigil.replication import resfile

    return sorted(resfile.read(Path(config_path) if config_path else _default_path()))


def _default_path() -> Path:
    override = os.environ.get("VIGIL_DRBD_CONF")
    if override:
        return Path(override)
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    return Path("/etc/drbd.d")
