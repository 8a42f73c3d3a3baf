"""What the heartbeat daemon needs from /etc/ha.d, as plain values.

`HeartbeatSettings` is the contract between the configuration files and the
daemon: timings in float seconds, node names, media, authkeys, groups.
Until the shared config parsers (`vigil.config.hacf`, `authkeys`,
`haresources`) land on main, `read_settings` reads the three files with a
small interim reader (the directives the daemon uses; the others are accepted
and reported as ignored), so the adapter to the config models stays one
function.

vigil's own extensions live in `<dir>/vigil.cf` (one `keyword value` per line):
`fence_command` (run before taking over from a peer that may still run
groups; `%n` is replaced by the peer's name; exit 0 = fenced),
`fence_policy` (`require`: no takeover when fencing fails; `ignore`: take
over anyway, loudly), `fence_timeout`, `fence_retry` (seconds).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vigil.errors import ConfigError, Location, VigilError
from vigil.ha.engine import NodeConfig
from vigil.ha.groups import Group, groups_from_lines
from vigil.membership.auth import AuthKeys
from vigil.membership.liveness import Timings
from vigil.membership.media import DEFAULT_UDPPORT, Medium

DEFAULT_DIR = Path("/etc/ha.d")
#: ha.cf keywords accepted for compatibility that change nothing in vigil.
IGNORED = frozenset({
    "logfacility", "use_logd", "conn_logd_time", "syslogmsgfmt", "log_badpack", "respawn",
    "failfast", "apiauth", "env", "compression", "compression_threshold",
    "traditional_compression", "msgfmt", "coredumps", "coreroot", "uuidfrom", "hbgenmethod",
    "cluster", "normalpoll", "memreserve", "use_apphbd", "baud", "serial", "watchdog",
    "quorum_server", "record_config_changes", "record_pengine_inputs",
    "enable_config_writes", "crm_daemon_dir", "crmd_spawns_pengine",
})
BOOLEAN_TRUE = {"true", "on", "yes", "y", "1"}
BOOLEAN_FALSE = {"false", "off", "no", "n", "0"}


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
    debug: int = 0
    stonith_hosts: tuple[StonithHost, ...] = ()
    fence_command: str | None = None
    fence_policy: str = "require"
    fence_timeout: float = 60.0
    fence_retry: float = 10.0
    ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def fencing(self) -> bool:
        return bool(self.fence_command or self.stonith_hosts)

    def node_config(self) -> NodeConfig:
        from vigil.membership.media import links_of

        return NodeConfig(
            me=self.me, nodes=self.nodes, links=links_of(self.media), timings=self.timings,
            keys=self.keys, groups=self.groups, auto_failback=self.auto_failback,
            ping_nodes=tuple(p.name for p in self.pings), hopfudge=self.hopfudge,
            max_rexmit_delay=self.max_rexmit_delay, fencing=self.fencing,
            fence_policy=self.fence_policy)


# -- small parsers ---------------------------------------------------------------------------

def parse_time(text: str) -> float:
    """Heartbeat's time syntax: seconds (fractions allowed), `ms`, `us`/`usec` -> seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|us|usec|s)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a time (e.g. 2, 0.5, 500ms)")
    value = float(match.group(1))
    unit = (match.group(2) or "s").lower()
    millis = round(value * {"s": 1000.0, "ms": 1.0, "us": 0.001, "usec": 0.001}[unit])
    return millis / 1000.0


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in BOOLEAN_TRUE:
        return True
    if lowered in BOOLEAN_FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (on/off, yes/no, true/false)")


def _lines(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(Location(str(path)), "file not found") from None
    except OSError as exc:
        raise ConfigError(Location(str(path)), f"cannot read: {exc.strerror}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            yield number, raw, line.split()


def local_addresses() -> set[str]:
    """The addresses of this host (to skip `ucast` lines that point at ourselves)."""
    from vigil.kernel.netlink import iproute

    with iproute() as ipr:
        return {str(ipaddress.ip_address(a.get("IFA_ADDRESS"))) for a in ipr.get_addr()
                if a.get("IFA_ADDRESS")}


# -- the files -----------------------------------------------------------------------------

def read_settings(directory: str | Path = DEFAULT_DIR, me: str | None = None,
                  addresses: Callable[[], set[str]] = local_addresses) -> HeartbeatSettings:
    directory = Path(directory)
    me = (me or _node_name(directory)).lower()
    values = _read_hacf(directory / "ha.cf", me, addresses)
    keys = read_authkeys(directory / "authkeys")
    groups = read_haresources(directory / "haresources", values["nodes"])
    extension = _read_extension(directory / "vigil.cf")
    return HeartbeatSettings(directory=directory, me=me, keys=keys, groups=groups,
                             **values, **extension)


def _node_name(directory: Path) -> str:
    nodeinfo = directory / "nodeinfo"
    if nodeinfo.exists():
        name = nodeinfo.read_text().strip()
        if name:
            return name
    return os.uname().nodename


def _read_hacf(path: Path, me: str, addresses: Callable[[], set[str]]) -> dict:
    times: dict[str, float] = {}
    nodes: list[str] = []
    media: list[Medium] = []
    pings: list[PingTarget] = []
    stonith: list[StonithHost] = []
    ignored: list[str] = []
    warnings: list[str] = []
    options: dict[str, object] = {}
    udpport = DEFAULT_UDPPORT
    mine: set[str] | None = None
    where = Location(str(path))
    for number, raw, words in _lines(path):
        where = Location(str(path), number)
        keyword, args = words[0].lower(), words[1:]

        def need(count: int, keyword: str = keyword, args: list[str] = args,
                 where: Location = where, raw: str = raw) -> None:
            if len(args) < count:
                raise ConfigError(where, f"{keyword} needs {count} value(s)", raw)

        try:
            if keyword in ("keepalive", "deadtime", "warntime", "initdead", "deadping"):
                need(1)
                times[keyword] = parse_time(args[0])
            elif keyword == "udpport":
                need(1)
                udpport = int(args[0])
            elif keyword == "bcast":
                need(1)
                media += [Medium("bcast", dev, udpport) for dev in args]
            elif keyword in ("mcast", "mcast6"):
                need(5)
                media.append(Medium(keyword, args[0], int(args[2]), args[1], int(args[3]),
                                    int(args[4])))
            elif keyword in ("ucast", "ucast6"):
                need(2)
                if mine is None:
                    mine = addresses()
                for peer in args[1:]:
                    if str(ipaddress.ip_address(peer.split("%")[0])) in mine:
                        continue  # heartbeat skips a ucast line that points at this host
                    media.append(Medium(keyword, args[0], udpport, peer))
            elif keyword == "node":
                need(1)
                nodes += [n.lower() for n in args]
            elif keyword in ("ping", "ping6"):
                need(1)
                for address in args:
                    ipaddress.ip_address(address)
                    pings.append(PingTarget(address, (address,)))
            elif keyword == "ping_group":
                need(2)
                for address in args[1:]:
                    ipaddress.ip_address(address)
                pings.append(PingTarget(args[0], tuple(args[1:])))
            elif keyword == "auto_failback":
                need(1)
                value = args[0].lower()
                if value != "legacy":
                    value = "on" if parse_bool(value) else "off"
                options["auto_failback"] = value
            elif keyword == "nice_failback":
                need(1)
                options["auto_failback"] = "off" if parse_bool(args[0]) else "legacy"
                warnings.append(f"{where}: nice_failback is obsolete; "
                                "use auto_failback")
            elif keyword == "hopfudge":
                need(1)
                options["hopfudge"] = int(args[0])
            elif keyword == "max_rexmit_delay":
                need(1)
                options["max_rexmit_delay"] = int(args[0]) / 1000.0
            elif keyword == "realtime":
                need(1)
                options["realtime"] = parse_bool(args[0])
            elif keyword == "rtprio":
                need(1)
                options["rtprio"] = int(args[0])
            elif keyword in ("logfile", "debugfile"):
                need(1)
                options[keyword] = args[0]
            elif keyword == "debug":
                need(1)
                options["debug"] = int(args[0])
            elif keyword == "stonith_host":
                need(2)
                stonith.append(StonithHost(args[0].lower(), args[1], tuple(args[2:])))
            elif keyword == "stonith":
                need(2)
                stonith.append(StonithHost("*", args[0], ("-F", args[1])))
            elif keyword in ("crm", "pacemaker"):
                need(1)
                if args[0].lower() not in BOOLEAN_FALSE:
                    raise ConfigError(where, f"{keyword} {args[0]}: vigil runs haresources "
                                      "groups itself, not Pacemaker", raw)
            elif keyword == "autojoin":
                need(1)
                if args[0].lower() != "none":
                    raise ConfigError(where, "autojoin: vigil needs its nodes listed "
                                      "(autojoin none)", raw)
            elif keyword in IGNORED:
                ignored.append(keyword)
            else:
                raise ConfigError(where, f"unknown directive {keyword!r}", raw)
        except ConfigError:
            raise
        except (ValueError, VigilError) as exc:
            raise ConfigError(where, f"{keyword}: {exc}", raw) from None
    if not media:
        raise ConfigError(Location(str(path)), "no communication media (bcast, mcast, "
                          "ucast, ...)")
    if not nodes:
        raise ConfigError(Location(str(path)), "no node lines")
    if me not in nodes:
        raise ConfigError(Location(str(path)), f"this node ({me}, uname -n) is not listed "
                          f"in a node line ({' '.join(nodes)})")
    try:
        timings = Timings(
            keepalive=times.get("keepalive", 1.0), deadtime=times.get("deadtime", 30.0),
            warntime=times.get("warntime"), initdead=times.get("initdead"),
            deadping=times.get("deadping"))
    except VigilError as exc:
        raise ConfigError(Location(str(path)), str(exc)) from None
    return {"nodes": tuple(dict.fromkeys(nodes)), "timings": timings, "media": tuple(media),
            "pings": tuple(pings), "stonith_hosts": tuple(stonith),
            "ignored": tuple(dict.fromkeys(ignored)), "warnings": tuple(warnings), **options}


def read_authkeys(path: Path, check_mode: bool = True) -> AuthKeys:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(Location(str(path)), "file not found") from None
    if check_mode and mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(Location(str(path)), "readable by others: the keys must be "
                          "secret (chmod 600)")
    sign_with: int | None = None
    pairs: dict[int, tuple[str, str]] = {}
    for number, raw, words in _lines(path):
        where = Location(str(path), number)
        if words[0] == "auth":
            if len(words) != 2 or not words[1].isdigit():
                raise ConfigError(where, "auth needs one key number", raw)
            sign_with = int(words[1])
        elif words[0].isdigit() and len(words) in (2, 3):
            pairs[int(words[0])] = (words[1], words[2] if len(words) == 3 else "")
        else:
            raise ConfigError(where, "expected 'auth N' or 'N method [secret]'", raw)
    if sign_with is None:
        raise ConfigError(Location(str(path)), "no 'auth N' line")
    try:
        return AuthKeys.from_pairs(sign_with, pairs)
    except VigilError as exc:
        raise ConfigError(Location(str(path)), str(exc).removeprefix("authkeys: ")) from None


def read_haresources(path: Path, nodes: tuple[str, ...]) -> tuple[Group, ...]:
    if not path.exists():
        return ()
    text = path.read_text()
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            logical.append((start, pending))
        pending = ""
    lines = []
    keys: set[str] = set()
    for number, line in logical:
        where = Location(str(path), number)
        words = line.split()
        if len(words) < 2:
            raise ConfigError(where, "a group needs a node and at least one resource", line)
        home = words[0].lower()
        if home not in nodes:
            raise ConfigError(where, f"node {home} is not in ha.cf's node lines", line)
        resources = [_resource(w) for w in words[1:]]
        if resources[0] in keys:
            raise ConfigError(where, f"{resources[0]} starts two groups", line)
        keys.add(resources[0])
        lines.append((home, resources))
    return groups_from_lines(lines)


def _resource(token: str) -> str:
    """A bare IPv4 address (with /bits/iface/bcast) is shorthand for IPaddr::<it>."""
    head = token.split("/")[0]
    try:
        if ipaddress.ip_address(head).version == 4 and "::" not in token:
            return f"IPaddr::{token}"
    except ValueError:
        pass
    return token


def _read_extension(path: Path) -> dict:
    if not path.exists():
        return {}
    values: dict[str, object] = {}
    for number, raw, words in _lines(path):
        where = Location(str(path), number)
        keyword, rest = words[0], raw.split("#", 1)[0].strip()[len(words[0]):].strip()
        try:
            if keyword == "fence_command":
                values["fence_command"] = rest
            elif keyword == "fence_policy":
                if rest not in ("require", "ignore"):
                    raise ConfigError(where, "fence_policy is require or ignore", raw)
                values["fence_policy"] = rest
            elif keyword in ("fence_timeout", "fence_retry"):
                values[keyword] = parse_time(rest)
            else:
                raise ConfigError(where, f"unknown vigil.cf keyword {keyword!r}", raw)
        except ValueError as exc:
            raise ConfigError(where, str(exc), raw) from None
    return values
