"""A replicated volume's settings, and where they come from.

`VolumeConfig` is what the replication core needs, in plain units (bytes,
seconds). `from_resource` builds it from a resource of the shared DRBD parser
(`vigil.config.drbd`: `resource NAME { ... }` with `on HOST { device; disk;
address; meta-disk; }` and net/disk/handlers sections, `common` merged in,
DRBD 8.4's defaults filled); `load` reads the configuration and picks the
resource for this host.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from vigil.config import drbd
from vigil.errors import ConfigError, Location, UsageError
from vigil.replication.completion import Protocol
from vigil.replication.rate import RateSettings
from vigil.replication.split_brain import Policies
from vigil.replication.timers import LinkSettings
from vigil.replication.wfc import StartupTimeouts

DEFAULT_CONFIG = Path(drbd.DEFAULT_PATH)


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


#: DRBD's page size: max-buffers counts these
PAGE = 4096


@dataclass(frozen=True)
class Buffers:
    """net's sndbuf-size and rcvbuf-size (0: the kernel autotunes) and max-buffers."""

    sndbuf: int = 0
    rcvbuf: int = 0
    #: received bytes waiting to be handled, in 4 KiB pages, before reading pauses
    max_buffers: int = 2048

    @property
    def pause_bytes(self) -> int:
        return self.max_buffers * PAGE


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
    #: csums-alg: a resync compares block digests first and sends only the differing blocks
    csums_alg: str = ""
    #: data-integrity-alg: every replicated block carries its digest, checked on arrival
    integrity_alg: str = ""
    policies: Policies = field(default_factory=Policies)
    link: LinkSettings = field(default_factory=LinkSettings)
    buffers: Buffers = field(default_factory=Buffers)
    rate: RateSettings = field(default_factory=RateSettings)
    al_extents: int = 1237
    fencing: str = "dont-care"
    #: on-io-error: pass_on, call-local-io-error or detach (DRBD's default)
    on_io_error: str = "detach"
    handlers: dict[str, str] = field(default_factory=dict)
    startup: StartupTimeouts = field(default_factory=StartupTimeouts)
    #: `become-primary-on` (an `on` name or `both`), for the boot path
    become_primary_on: str | None = None
    source: str = ""
    #: the configuration's warnings (`file:line:col: warning: ...`), said at start
    warnings: tuple[str, ...] = ()

    @property
    def run_dir(self) -> Path:
        return Path("/run/vigil/volume") / self.name

    @property
    def known_size_file(self) -> Path:
        """The backing disk's size where its internal metadata sits (DRBD's .lkbd file):
        how the metadata is found again if the disk grew while the volume was down."""
        return Path("/var/lib/vigil/volume") / f"{self.name}.lkbd"

    @property
    def i_connect(self) -> bool:
        """The node with the lower address connects; the other accepts (no duplicate links)."""
        mine = (ipaddress.ip_address(self.local.address), self.local.port)
        theirs = (ipaddress.ip_address(self.peer.address), self.peer.port)
        return mine < theirs


def _endpoint(resource: drbd.Resource, host: drbd.Host, where: Location) -> Endpoint:
    name = host.names[0]
    volume = host.volume(0) or (host.volumes[0] if host.volumes else None)
    if volume is None or not volume.device or not volume.disk or host.address is None:
        raise ConfigError(where, f"resource {resource.name}: 'on {name}' needs device, disk "
                          "and address")
    if volume.disk == "none":
        raise ConfigError(where, f"resource {resource.name}: diskless nodes are not supported")
    meta = volume.meta_disk or "internal"
    index = 0
    if "[" in meta:
        meta, _, rest = meta.partition("[")
        index = int(rest.rstrip("]") or 0)
    return Endpoint(name, host.address.host, host.address.port, volume.device, volume.disk,
                    meta, index)


def from_resource(resource: drbd.Resource, hostname: str) -> VolumeConfig:
    """This host's view of a parsed DRBD resource."""
    where = resource.location or Location(str(DEFAULT_CONFIG))
    mine = resource.host(hostname) or resource.host(hostname.split(".")[0])
    if mine is None:
        known = ", ".join(n for h in resource.hosts for n in h.names) or "none"
        raise UsageError(f"resource {resource.name} has no 'on {hostname}' section "
                         f"(hosts: {known})")
    peers = [h for h in resource.hosts if h is not mine]
    if len(peers) != 1:
        raise ConfigError(where, f"resource {resource.name} must name exactly two hosts")
    net, disk = resource.net, resource.disk
    try:
        protocol = Protocol.parse(net.protocol)
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from None
    return VolumeConfig(
        name=resource.name,
        local=_endpoint(resource, mine, where),
        peer=_endpoint(resource, peers[0], where),
        protocol=protocol,
        shared_secret=net.shared_secret or "",
        cram_hmac_alg=net.cram_hmac_alg or "sha1",
        allow_two_primaries=net.allow_two_primaries,
        verify_alg=net.verify_alg or "sha256",
        csums_alg=net.csums_alg or "",
        integrity_alg=net.data_integrity_alg or "",
        policies=Policies(net.after_sb_0pri, net.after_sb_1pri, net.after_sb_2pri),
        link=LinkSettings(connect_int=net.connect_int, ping_int=net.ping_int,
                          ping_timeout=net.ping_timeout, timeout=net.timeout,
                          ko_count=net.ko_count),
        buffers=Buffers(sndbuf=net.sndbuf_size, rcvbuf=net.rcvbuf_size,
                        max_buffers=net.max_buffers),
        rate=RateSettings(resync_rate=disk.resync_rate, c_plan_ahead=disk.c_plan_ahead,
                          c_fill_target=disk.c_fill_target, c_delay_target=disk.c_delay_target,
                          c_max_rate=disk.c_max_rate, c_min_rate=disk.c_min_rate),
        al_extents=disk.al_extents,
        fencing=disk.fencing,
        on_io_error=disk.on_io_error,
        handlers=dict(resource.handlers.items()),
        startup=StartupTimeouts(wfc=resource.startup.wfc_timeout,
                                degraded=resource.startup.degr_wfc_timeout,
                                outdated=resource.startup.outdated_wfc_timeout,
                                wait_after_sb=resource.startup.wait_after_sb),
        become_primary_on=resource.startup.become_primary_on,
        source=str(where),
    )


def _read(path: Path) -> drbd.DrbdConfig:
    """The whole configuration, or `ConfigErrors` naming file, line and problem."""
    return drbd.read(str(path)).unwrap()


def load(name: str, config_path: str | os.PathLike[str] | None = None,
         hostname: str | None = None) -> VolumeConfig:
    """The named resource, for this host, from the DRBD configuration."""
    path = Path(config_path) if config_path else _default_path()
    parsed = drbd.read(str(path))
    config = parsed.unwrap()
    resource = config.resource(name)
    if resource is None:
        known = ", ".join(r.name for r in config.resources) or "none"
        raise UsageError(f"'{name}' not defined in {path} (resources: {known})")
    cfg = from_resource(resource, hostname or os.uname().nodename)
    return dataclasses.replace(cfg, warnings=tuple(w.headline() for w in parsed.warnings))


def resource_names(config_path: str | os.PathLike[str] | None = None) -> list[str]:
    path = Path(config_path) if config_path else _default_path()
    return sorted(r.name for r in _read(path).resources)


def _default_path() -> Path:
    return Path(os.environ.get("VIGIL_DRBD_CONF") or DEFAULT_CONFIG)
