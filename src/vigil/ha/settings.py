"""What the heartbeat daemon needs from /etc/ha.d, as plain values.

`HeartbeatSettings` is the contract between the configuration and the
daemon: timings in float seconds, node names, media, authkeys, groups,
fencing. `from_config` is the one adapter from the config models
(`vigil.config`: ha.cf, authkeys, haresources, vigil.cf) to it;
`read_settings` loads and checks a directory and adapts it.

From vigil.cf the daemon takes `fence_command` (run before taking over from a
peer that may still run groups; `%n` is the peer's name; exit 0 = fenced),
`fence_timeout`, `fence_before_takeover`, `takeover_delay`, `garp_refresh`
(re-announce the addresses of held groups this often) and
`control_socket`; the agents take the rest (`vigil.config.extension`).
A failed fence means no takeover (retried every `fence_retry`); the
`fence_policy` "ignore" (take over anyway, loudly) exists in the core but
has no vigil.cf keyword yet.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.errors import VigilError
from vigil.ha.engine import NodeConfig
from vigil.ha.groups import Group, groups_from_refs
from vigil.ha.respawn import Program
from vigil.membership.auth import AuthKeys
from vigil.membership.codec import Compressor

if TYPE_CHECKING:
    from vigil.cluster.loader import ClusterConfig
    from vigil.config.hacf import HaCf
    from vigil.config.hacf import Medium as MediumLine
from vigil.membership.liveness import Timings
from vigil.membership.media import Medium, links_of

DEFAULT_DIR = Path("/etc/ha.d")


@dataclass(frozen=True)
class PingTarget:
    """A ping node (one address) or a ping group (alive when any address answers)."""

    name: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class StonithHost:
    from_host: str  # the node the device hangs off, or "*"
    device: str
    params: tuple[str, ...]
    #: `stonith TYPE FILE` names a configuration file; `stonith_host` gives parameters
    config_file: str | None = None

    def command(self, node: str) -> list[str]:
        """cluster-glue's `stonith` call that resets `node`, as heartbeat configures it."""
        source = ["-F", self.config_file] if self.config_file is not None \
            else ["-p", " ".join(self.params)]
        return ["stonith", "-t", self.device, *source, "-T", "reset", node]


@dataclass(frozen=True)
class HeartbeatSettings:
    directory: Path
    me: str
    nodes: tuple[str, ...]
    timings: Timings
    media: tuple[Medium, ...]
    keys: AuthKeys
    groups: tuple[Group, ...] = ()
    auto_failback: str = "legacy"
    pings: tuple[PingTarget, ...] = ()
    hopfudge: int = 1
    max_rexmit_delay: float = 0.25
    realtime: bool = True
    rtprio: int | None = None
    logfile: str | None = None
    debugfile: str | None = None
    #: ha.cf's syslog facility ("none": no syslog; None: not set)
    logfacility: str | None = None
    #: ha.cf's respawn/failfast programs (ipfail excepted) and `env` settings for them
    respawn: tuple[Program, ...] = ()
    #: ha.cf's watchdog device, fed by the heartbeat thread
    watchdog: str | None = None
    #: how the generation is kept: "file" (a counter in hb_generation) or "time"
    hbgenmethod: str = "file"
    #: vigil.cf's `fence NODE` sections: node -> (agent, parameters)
    fence_agents: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    debug: int = 0
    stonith_hosts: tuple[StonithHost, ...] = ()
    fence_command: str | None = None
    #: vigil.cf reboot_command: failed_stop reboot and failfast
    reboot_command: str = "/sbin/reboot -nf"
    fence_before_takeover: bool = True
    fence_policy: str = "require"
    fence_timeout: float = 60.0
    fence_retry: float = 10.0
    takeover_delay: float = 0.0
    garp_refresh: float = 0.0
    #: vigil.cf notify_command: run on cluster events (see `vigil.ha.notify`)
    notify_command: str | None = None
    control_socket: str | None = None
    #: vigil.cf metrics_address (HOST:PORT, or None: no /metrics)
    metrics_address: str | None = None
    compressor: Compressor | None = None
    warnings: tuple[str, ...] = ()
    #: the config models this came from (the agents driver takes its options from it)
    source: ClusterConfig | None = field(default=None, compare=False, repr=False)

    @property
    def fencing(self) -> bool:
        return self.fence_before_takeover and bool(self.fence_command or self.stonith_hosts
                                                   or self.fence_agents)

    def node_config(self) -> NodeConfig:
        return NodeConfig(
            me=self.me, nodes=self.nodes, links=links_of(self.media), timings=self.timings,
            keys=self.keys, groups=self.groups, auto_failback=self.auto_failback,
            ping_nodes=tuple(p.name for p in self.pings), hopfudge=self.hopfudge,
            max_rexmit_delay=self.max_rexmit_delay, fencing=self.fencing,
            fence_policy=self.fence_policy, fence_retry=self.fence_retry,
            takeover_delay=self.takeover_delay, garp_refresh=self.garp_refresh,
            compressor=self.compressor)


# -- the adapter ------------------------------------------------------------------------------

def _medium(medium: MediumLine) -> Medium | None:
    from vigil.config import hacf

    if isinstance(medium, hacf.Bcast):
        return Medium("bcast", medium.interface, medium.port)
    if isinstance(medium, hacf.Mcast):
        return Medium("mcast", medium.interface, medium.port, str(medium.group), medium.ttl,
                      medium.loop)
    if isinstance(medium, hacf.Mcast6):
        return Medium("mcast6", medium.interface, medium.port, str(medium.group),
                      medium.hops, medium.loop)
    if isinstance(medium, hacf.Ucast):
        return Medium("ucast", medium.interface, medium.port, _resolve(medium.peer, 4))
    if isinstance(medium, hacf.Ucast6):
        return Medium("ucast6", medium.interface, medium.port, _resolve(medium.peer, 6))
    return None  # serial: not supported by vigil


def _resolve(peer: str, family: int) -> str:
    """A ucast peer may be a host name: its address (looked up once, at start)."""
    import ipaddress

    try:
        ipaddress.ip_address(peer.split("%")[0])
        return peer
    except ValueError:
        kind = socket.AF_INET6 if family == 6 else socket.AF_INET
        return str(socket.getaddrinfo(peer, None, kind)[0][4][0])


def from_config(cluster: ClusterConfig, me: str,
                local_addresses: set[str] | frozenset[str] = frozenset(),
                directory: str | Path = DEFAULT_DIR) -> HeartbeatSettings:
    """`vigil.cluster.loader.ClusterConfig` -> the daemon's settings, for node `me`."""
    from vigil.config import hacf as hacf_mod

    hacf, extension = cluster.hacf, cluster.extension
    media = [m for m in (_medium(m) for m in hacf_mod.media_for_host(hacf, local_addresses))
             if m is not None]
    warnings = []
    if any(isinstance(m, hacf_mod.Serial) for m in hacf.media):
        warnings.append("serial links are not supported: heartbeats use the network media")
    from vigil.config.extension import unsupported
    warnings.extend(unsupported(extension))
    programs = tuple(Program(r.user, r.command, r.failfast) for r in hacf.respawn
                     if not r.is_ipfail)
    if cluster.authkeys.auth is None:  # `load` refuses such a file first
        raise VigilError(f"{cluster.authkeys.path}: no 'auth N' line: say which key signs "
                         "outgoing packets")
    keys = AuthKeys.from_pairs(cluster.authkeys.auth, {
        number: (key.method.value, key.secret) for number, key in cluster.authkeys.keys.items()})
    groups = groups_from_refs([(g.node, g.resources) for g in cluster.haresources.groups])
    stonith = tuple(StonithHost(d.host.lower(), d.type, tuple(d.params.split()),
                                config_file=d.params.strip() if d.kind == "stonith" else None)
                    for d in hacf.stonith if d.usable_from(me))
    return HeartbeatSettings(
        directory=Path(directory), me=me.lower(), nodes=tuple(hacf.nodes),
        timings=Timings(keepalive=hacf.keepalive, deadtime=hacf.deadtime,
                        warntime=hacf.warntime, initdead=hacf.initdead,
                        deadping=hacf.deadping),
        media=tuple(media), keys=keys, groups=groups,
        auto_failback=hacf.auto_failback.value,
        pings=tuple(PingTarget(p.name, tuple(p.addresses)) for p in hacf.ping_nodes),
        hopfudge=hacf.hopfudge, max_rexmit_delay=hacf.max_rexmit_delay,
        realtime=hacf.realtime, rtprio=hacf.rtprio, logfile=hacf.logfile,
        debugfile=hacf.debugfile, logfacility=hacf.logfacility, debug=hacf.debug,
        respawn=programs, env=tuple(hacf.env.items()), watchdog=hacf.watchdog,
        hbgenmethod=hacf.hbgenmethod,
        fence_agents=tuple((d.node, d.agent, tuple(d.params.items()))
                           for d in extension.fence_devices.values()),
        stonith_hosts=stonith,
        fence_command=extension.fence_command, reboot_command=extension.reboot_command,
        fence_before_takeover=extension.fence_before_takeover,
        fence_timeout=extension.fence_timeout, takeover_delay=extension.takeover_delay,
        garp_refresh=extension.garp_refresh, notify_command=extension.notify_command,
        control_socket=extension.control_socket, metrics_address=extension.metrics_address,
        warnings=tuple(warnings), source=cluster,
        compressor=compressor_of(hacf))


def compressor_of(hacf: HaCf) -> Compressor | None:
    """heartbeat compresses whole messages only with `traditional_compression on` (otherwise
    only the fields Pacemaker marks, which haresources messages never have): so does vigil."""
    if not hacf.traditional_compression:
        return None
    return Compressor(hacf.compression, hacf.compression_threshold * 1024)


def read_settings(directory: str | Path = DEFAULT_DIR, me: str | None = None
                  ) -> HeartbeatSettings:
    """Load and check /etc/ha.d (`vigil check`'s checks); raises `ConfigErrors`."""
    from vigil.cluster.loader import ConfigPaths, HostFacts, load

    facts = HostFacts.this_host(me)
    cluster = load(ConfigPaths(ha_dir=str(directory)), facts)
    return from_config(cluster, facts.hostname, facts.local_addresses or frozenset(),
                       directory)
