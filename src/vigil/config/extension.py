"""`/etc/ha.d/vigil.cf`: vigil's own settings, for what the legacy files cannot say.

The file is optional; without it vigil behaves as described by the defaults
below, and ha.cf, authkeys, haresources, ldirectord.cf and the DRBD files
never need to change. It is written in heartbeat's style::

    # global settings: keyword value
    restart_limit 2
    fence_command /usr/local/sbin/fence-peer %n

    # settings for every resource run by one agent (haresources name)
    agent mysqld
        monitor_interval 5
        restart_limit 2

    # settings for one resource, named as written in haresources
    # (the IPaddr shorthand 198.51.100.100/24/eth0 names the same resource)
    resource IPaddr::198.51.100.100/24/eth0
        monitor off

`#` starts a comment. Times use heartbeat's syntax (seconds, or `500ms`);
booleans on/off, yes/no. A section starts with an ``agent NAME`` or
``resource NAME`` line at the start of a line; its settings are the indented
lines after it (blank lines allowed); the next unindented line ends it.
A resource's settings come from its ``resource`` section, then its
``agent`` section, then the global settings (`ExtensionConfig.policy_for`).

Public API: `ExtensionConfig`, `ResourcePolicy`, `PolicyOverride`,
`KEYWORDS`, `POLICY_KEYWORDS`, `analyze`, `parse`, `render`.
`vigil.agents.options.options_from_extension(config)` turns it into the
`AgentOptions` the agents, groups and monitor take.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from vigil.config.base import (
    NO_JSON,
    SECRET,
    BoolValue,
    ChoiceValue,
    Diagnostics,
    FrozenMap,
    IntValue,
    Keyword,
    Parsed,
    PathValue,
    SourceLine,
    StrValue,
    TimeValue,
    ValueParser,
    ValueProblem,
    format_time,
    keyword_table,
    physical_lines,
    split_words,
    strip_comment,
)
from vigil.config.haresources import ResourceRef, parse_resource
from vigil.errors import Location
from vigil.lvs.syncdaemon import SyncDaemonError, parse_setting

DEFAULT_PATH = "/etc/ha.d/vigil.cf"


class SyncDaemonValue(ValueParser[str]):
    """keepalived's `lvs_sync_daemon` words (less the VRRP instance), checked whole."""

    expects = "INTERFACE [id N] [maxlen N] [port P] [ttl T] [group ADDRESS], or off"

    def __call__(self, text: str) -> str:
        try:
            parse_setting(text)
        except SyncDaemonError as exc:
            raise ValueProblem(str(exc).removeprefix("lvs_sync_daemon: ")) from None
        return " ".join(text.split())


class EtcdEndpointsValue(ValueParser[str]):
    """etcd client URLs, `http://HOST:PORT` (or `HOST:PORT`), separated by commas or spaces."""

    expects = "http://HOST:PORT[,http://HOST:PORT...]"

    def __call__(self, text: str) -> str:
        found = []
        for word in text.replace(",", " ").split():
            url = word if "//" in word else f"http://{word}"
            m = re.fullmatch(r"http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]+))?", url)
            if not m or (m.group(2) is not None and not 0 < int(m.group(2)) < 65536):
                raise ValueProblem(f"bad etcd endpoint {word!r}: expected http://HOST:PORT "
                                   "(etcd's JSON gateway; https is not supported)")
            found.append(url if m.group(2) else f"{url}:2379")
        if not found or len(found) > 16:
            raise ValueProblem("one to 16 etcd endpoints")
        return ",".join(found)


def lease_problem(ttl: float, margin: float, refresh: float | None = None) -> str | None:
    """Why a lease TTL and stop margin cannot work together (None: they can). The holder
    refreshes every `refresh` (a third of the TTL unset) and must get a second try in
    before it stops at TTL - margin."""
    if not 0 < margin < ttl:
        return f"the margin ({margin:g} s) must lie inside the lease TTL ({ttl:g} s)"
    every = refresh if refresh is not None else ttl / 3
    if every >= ttl - margin:
        return (f"refreshing every {every:g} s leaves no second try before the stop at "
                f"TTL - margin ({ttl - margin:g} s)")
    return None


def etcd_endpoint_list(text: str | None) -> tuple[str, ...]:
    """vigil.cf's etcd_endpoints as a list (the model keeps the normalised text)."""
    return tuple(text.split(",")) if text else ()


class ShortTimeValue(TimeValue):
    """A time from `minimum` (0 unset) up to `maximum` seconds."""

    def __init__(self, maximum: float, minimum: float = 0.0):
        super().__init__(minimum)
        self.maximum = maximum
        bounds = (f"from {format_time(minimum)}s to {format_time(maximum)}s" if minimum
                  else f"of at most {format_time(maximum)}s")
        self.expects = f"a time {bounds}"

    def __call__(self, text: str) -> float:
        value = super().__call__(text)
        if value > self.maximum:
            bound = (f"lie from {format_time(self.minimum or 0)}s to "
                     f"{format_time(self.maximum)}s" if self.minimum
                     else f"be at most {format_time(self.maximum)}s")
            raise ValueProblem(f"time {text!r} must {bound}")
        return value


class AddressValue(ValueParser[str]):
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6), a bare ``PORT`` (loopback), or ``off``."""

    expects = "HOST:PORT (e.g. 127.0.0.1:9694), PORT (on loopback) or off"

    def __call__(self, text: str) -> str:
        if text.isdigit() and 0 < int(text) < 65536:
            return f"127.0.0.1:{int(text)}"
        m = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]+)", text)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise ValueProblem(f"bad address {text!r}: expected {self.expects}")
        host = m.group(1).strip("[]")
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueProblem(f"bad IPv6 address {host!r}") from None
        return text


# ---------------------------------------------------------------------------
# Model


#: who decides which node runs a group: heartbeat's pair, or leases in an etcd cluster
CLUSTER_BACKENDS = ("heartbeat", "etcd")
#: the lease TTL's bounds (etcd's own minimum lease is a few seconds)
LEASE_TTL_RANGE = (2.0, 300.0)

#: the BGP speakers `director_announce` (and `vigil director --announce`) can name
ANNOUNCE_SPEAKERS = ("off", "exabgp", "bird")

@dataclass(frozen=True)
class ResourcePolicy:
    """How vigil watches and recovers one resource (all times in seconds).

    Interval and timeouts of None mean "the agent's own default" (IPaddr
    monitors every 5 s, an LSB script every 15 s, ...: `Agent.default_interval`
    and `default_timeout` in `vigil.agents`).
    """

    monitor: bool = True
    monitor_interval: float | None = None
    monitor_timeout: float | None = None
    start_timeout: float | None = None
    stop_timeout: float | None = None
    restart_limit: int = 3
    restart_window: float = 300.0
    on_monitor_failure: str = "restart"
    failed_stop: str = "block"
    stop_retries: int = 10


@dataclass(frozen=True)
class PolicyOverride:
    """An ``agent`` or ``resource`` section: the settings it gives (None = inherited)."""

    kind: str  # agent | resource
    name: str
    settings: FrozenMap[str, Any] = field(default_factory=FrozenMap)
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)

    def apply(self, policy: ResourcePolicy) -> ResourcePolicy:
        return replace(policy, **dict(self.settings))


@dataclass(frozen=True)
class FenceDevice:
    """A `fence NODE` section: the fence agent that powers NODE off, and its parameters
    (fence-agents' key=value names: ip, username, password, plug, ...)."""

    node: str
    agent: str
    #: may hold passwords: shown as stars unless asked
    params: FrozenMap[str, str] = field(default_factory=FrozenMap, metadata=SECRET)
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)


@dataclass(frozen=True)
class ExtensionConfig:
    """vigil.cf with every default filled in."""

    defaults: ResourcePolicy = field(default_factory=ResourcePolicy)
    agents: FrozenMap[str, PolicyOverride] = field(default_factory=FrozenMap)
    resources: FrozenMap[str, PolicyOverride] = field(default_factory=FrozenMap)
    fence_command: str | None = None
    fence_timeout: float = 60.0
    fence_before_takeover: bool = True
    takeover_delay: float = 0.0
    control_socket: str = "/run/vigil/control.sock"
    notify_command: str | None = None
    metrics_address: str | None = None
    garp_count: int | None = None
    garp_interval: float | None = None
    garp_refresh: float = 0.0
    duplicate_probe: bool = True
    fsck: str = "auto"
    drbd_backend: str = "auto"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    mail_from: str | None = None
    state_dir: str = "/var/lib/vigil"
    #: IPVS's connection sync daemon for `vigil director` (its words; None: off)
    lvs_sync_daemon: str | None = None
    director_announce: str = "off"
    announce_holddown: float = 0.0
    conntrackd_conf: str | None = None
    announce_linger: float = 0.0
    #: how this node reboots itself (failed_stop reboot, a dead failfast program)
    reboot_command: str = "/sbin/reboot -nf"
    #: heartbeat (the pair's own membership) or etcd (a lease per group in an etcd cluster)
    cluster_backend: str = "heartbeat"
    etcd_endpoints: str | None = None
    etcd_prefix: str = "/vigil"
    lease_ttl: float = 10.0
    lease_margin: float = 3.0
    #: `fence NODE` sections, by node name (lower case)
    fence_devices: FrozenMap[str, FenceDevice] = field(default_factory=FrozenMap)
    path: str = field(default=DEFAULT_PATH, compare=False, metadata=NO_JSON)

    def policy_for(self, ref: ResourceRef) -> ResourcePolicy:
        """The policy of one haresources resource: resource section, agent section, globals."""
        policy = self.defaults
        agent = self.agents.get(ref.name)
        if agent is not None:
            policy = agent.apply(policy)
        section = self.resources.get(ref.label)
        if section is not None:
            return section.apply(policy)
        return policy


# ---------------------------------------------------------------------------
# Keyword tables

#: Settings allowed globally and in `agent`/`resource` sections.
POLICY_KEYWORDS = keyword_table(
    Keyword("monitor", "check the resource periodically while it runs (on/off)", BoolValue(),
            True),
    Keyword("monitor_interval", "time between two monitor checks", TimeValue(0, True),
            "the agent's (IPaddr 5 s, OCF 10 s, LSB and systemd 15 s, Filesystem 20 s)"),
    Keyword("monitor_timeout", "a monitor check that takes longer has failed",
            TimeValue(0, True), "the agent's (10 s to 100 s)"),
    Keyword("start_timeout", "a start that takes longer has failed", TimeValue(0, True),
            "the agent's"),
    Keyword("stop_timeout", "a stop attempt that takes longer has failed", TimeValue(0, True),
            "the agent's"),
    Keyword("restart_limit", "local restarts of a failed resource within restart_window "
            "before its group fails over (0: fail over at once)", IntValue(0, 1000), 3),
    Keyword("restart_window", "the window restart_limit counts in", TimeValue(0, True), 300.0),
    Keyword("on_monitor_failure", "restart: restart in place (up to restart_limit), then fail "
            "over; failover: move the group at once; ignore: only log",
            ChoiceValue("restart", "failover", "ignore"), "restart"),
    Keyword("failed_stop", "when a resource cannot be stopped: block (keep the group marked "
            "as held here, never let the peer start it, and alarm until an operator acts) or "
            "reboot (heartbeat's way: reboot at once so the peer may take over safely)",
            ChoiceValue("block", "reboot"), "block"),
    Keyword("stop_retries", "stop attempts, one second apart, before the stop has failed "
            "(heartbeat: 10)", IntValue(1, 100), 10),
)

KEYWORDS = keyword_table(
    *POLICY_KEYWORDS.values(),
    Keyword("fence_command", "command that fences the peer (%n: its node name); run before "
            "taking over from a dead peer; exit 0 means fenced", StrValue("a command")),
    Keyword("fence_timeout", "a fence command that takes longer has failed",
            TimeValue(0, True), 60.0),
    Keyword("fence_before_takeover", "fence a dead peer before taking over its groups, when "
            "a fence command or ha.cf stonith device exists (on/off)", BoolValue(), True),
    Keyword("takeover_delay", "extra wait after the peer is declared dead before taking "
            "over its groups", TimeValue(0), 0.0),
    Keyword("control_socket", "unix socket of `vigil status` and friends", PathValue(),
            "/run/vigil/control.sock"),
    Keyword("reboot_command", "command that reboots this node at once when a resource will "
            "not stop (failed_stop reboot) or a failfast program dies; the reason is in "
            "VIGIL_REBOOT_REASON", StrValue("a command"), "/sbin/reboot -nf"),
    Keyword("notify_command", "program run as `PROGRAM EVENT` on cluster events (node dead "
            "or alive, links, groups started, stopped or failed, fencing), with the facts in "
            "VIGIL_* variables: heartbeat's rc.d hooks, keepalived's notify", PathValue(), None),
    Keyword("metrics_address", "HOST:PORT (or PORT: on loopback) where vigil heartbeat "
            "serves Prometheus /metrics, or off",
            AddressValue(), None),
    Keyword("garp_count", "gratuitous ARPs / unsolicited neighbour advertisements sent when "
            "an address is taken over", IntValue(0, 100),
            "the agent's (IPaddr 10, as heartbeat; IPaddr2 5, as OCF IPaddr2)"),
    Keyword("garp_interval", "time between those announcements", TimeValue(0),
            "the agent's (IPaddr 500 ms, IPaddr2 200 ms)"),
    Keyword("garp_refresh", "re-announce held addresses this often (0: never)", TimeValue(0),
            0.0),
    Keyword("duplicate_probe", "before adding an address, refuse it when another host already "
            "answers for it (ARP probe / DAD) (on/off)", BoolValue(), True),
    Keyword("fsck", "Filesystem: check before mounting: auto (file systems without a journal), "
            "force, no", ChoiceValue("auto", "force", "no"), "auto"),
    Keyword("drbd_backend", "drbddisk: auto (drbdadm when the DRBD kernel module is loaded, "
            "else vigil's own replication), drbdadm, vigil",
            ChoiceValue("auto", "drbdadm", "vigil"), "auto"),
    Keyword("smtp_host", "MailTo: the SMTP server", StrValue("a host name"), "localhost"),
    Keyword("smtp_port", "MailTo: its port", IntValue(1, 65535, "port"), 25),
    Keyword("mail_from", "MailTo: the sender", StrValue("an address"), "root@`uname -n`"),
    Keyword("state_dir", "where vigil keeps its state", PathValue(), "/var/lib/vigil"),
    Keyword("lvs_sync_daemon", "IPVS's connection sync daemon, run by `vigil director` on "
            "its ipvs backend (keepalived's words, less the VRRP instance): INTERFACE [id N] "
            "[maxlen N] [port P] [ttl T] [group ADDRESS]; master while the director is "
            "active, backup while it is a warm standby, so established connections survive "
            "a director failover", SyncDaemonValue(), "off"),
    Keyword("director_announce", "active-active directors: the BGP speaker `vigil director` "
            "tells which VIPs it announces: off; exabgp (the director runs as ExaBGP's "
            "API process); bird (static routes in /etc/bird/vigil-announce.conf, which "
            "bird.conf includes, then birdc configure)",
            ChoiceValue(*ANNOUNCE_SPEAKERS), "off"),
    Keyword("announce_linger", "active-active directors: on stop, keep forwarding this long "
            "after the withdrawals, while the routers move the flows away (at most 10 s)",
            ShortTimeValue(10.0), 0.0),
    Keyword("conntrackd_conf", "active-active directors: conntrackd's configuration; when "
            "it exists with a Sync section, NAT services may be announced (vigil starts "
            "no conntrackd)", PathValue(), None),
    Keyword("announce_holddown", "active-active directors: a VIP withdrawn because no real "
            "server was up is announced again only this long after", ShortTimeValue(86400.0),
            0.0),
    Keyword("cluster_backend", "who decides where each haresources group runs: heartbeat "
            "(the two nodes of ha.cf, over its media) or etcd (any number of nodes: a group "
            "runs where its key in etcd is held under that node's lease)",
            ChoiceValue(*CLUSTER_BACKENDS), "heartbeat"),
    Keyword("etcd_endpoints", "cluster_backend etcd: the etcd members' client URLs, "
            "http://HOST:PORT, separated by commas", EtcdEndpointsValue(), None),
    Keyword("etcd_prefix", "cluster_backend etcd: where vigil's keys live in etcd (one "
            "prefix per cluster sharing the store)", PathValue(), "/vigil"),
    Keyword("lease_ttl", "cluster_backend etcd: the lease's time to live; a holder cut off "
            "from etcd's majority stops its groups lease_margin before it ends, then another "
            "node may take them", ShortTimeValue(LEASE_TTL_RANGE[1], LEASE_TTL_RANGE[0]), 10.0),
    Keyword("lease_margin", "cluster_backend etcd: how long before its lease could end the "
            "holder has stopped the group (longer than a stop takes)", TimeValue(0, True),
            3.0),
    Keyword("agent", "section: settings for every resource of one agent", StrValue("a name")),
    Keyword("resource", "section: settings for one resource as written in haresources",
            StrValue("a resource")),
)

_WHOLE_LINE = frozenset({"fence_command", "reboot_command", "lvs_sync_daemon",
                         "etcd_endpoints"})


def analyze(text: str, path: str = DEFAULT_PATH) -> Parsed[ExtensionConfig]:
    """Parse vigil.cf, collecting every problem; never raises for bad input."""
    diags = Diagnostics(path)
    values: dict[str, Any] = {}
    seen: dict[str, int] = {}
    sections: dict[tuple[str, str], tuple[dict[str, Any], SourceLine]] = {}
    current: tuple[str, str] | None = None
    fences: dict[str, tuple[dict[str, str], SourceLine]] = {}
    fence: str | None = None
    global_lines: dict[str, SourceLine] = {}
    for line in physical_lines(text, path):
        content = strip_comment(line.text)
        words = split_words(content)
        if not words:
            continue
        head = words[0]
        indented = content[:1] in (" ", "\t")
        name = head.text
        if not indented:
            current = None
            fence = None
        if name == "fence" and not indented:
            if len(words) != 2:
                diags.error(line, head.column, "write 'fence NODE' on a line of its own")
                continue
            fence = words[1].text.lower()
            if fence in fences:
                diags.error(line, head.column, f"fence {words[1].text} has two sections "
                            f"(first on line {fences[fence][1].number})")
                fence = None
                continue
            fences[fence] = ({}, line)
            continue
        if indented and fence is not None:
            if not _FENCE_PARAM.fullmatch(name) or len(words) < 2:
                diags.error(line, head.column, "a fence section holds 'agent NAME' and the "
                            "agent's parameters as 'name value' (ip, username, password, "
                            "plug, ...)")
                continue
            fences[fence][0][name] = content[words[1].column - 1:].strip()
            continue
        if name in ("agent", "resource") and not indented:
            if len(words) != 2:
                diags.error(line, head.column, f"write '{name} NAME' on a line of its own")
                continue
            key = (name, words[1].text)
            if name == "resource":
                try:
                    key = (name, parse_resource(words[1].text).label)
                except ValueProblem as problem:
                    diags.error(line, words[1].column, f"resource: {problem}")
                    continue
            if key in sections:
                diags.error(line, head.column, f"{name} {words[1].text} has two sections (first "
                            f"on line {sections[key][1].number})")
                continue
            sections[key] = ({}, line)
            current = key
            continue
        if indented and current is None:
            diags.error(line, head.column, "indented line outside an 'agent' or 'resource' "
                        "section")
            continue
        table = POLICY_KEYWORDS if current is not None else KEYWORDS
        kw = table.get(name)
        if kw is None:
            message = f"unknown setting '{name}'"
            if current is not None and name in KEYWORDS:
                message = f"{name} is a global setting: write it unindented, outside sections"
            else:
                close = difflib.get_close_matches(name, list(table), n=1)
                if close:
                    message += f" (did you mean '{close[0]}'?)"
            diags.error(line, head.column, message)
            continue
        if len(words) < 2:
            expects = kw.parser.expects if kw.parser else "a value"
            diags.error(line, head.column, f"{name} needs a value ({expects})")
            continue
        if name in _WHOLE_LINE:
            value_text = content[words[1].column - 1:].strip()
        else:
            if len(words) > 2:
                diags.error(line, words[2].column, f"{name} takes one value")
                continue
            value_text = words[1].text
        assert kw.parser is not None
        if name in ("metrics_address", "lvs_sync_daemon") and value_text == "off":
            value: Any = None
        else:
            try:
                value = kw.parser(value_text)
            except ValueProblem as problem:
                diags.error(line, words[1].column, f"{name}: {problem}")
                continue
        target = sections[current][0] if current is not None else values
        scope = f"{current[0]} {current[1]}" if current is not None else "global"
        key = f"{scope}:{name}"
        if key in seen:
            diags.warning(line, head.column,
                          f"{name} set again (first on line {seen[key]}); the last value counts")
        seen[key] = line.number
        target[name] = value
        if current is None:
            global_lines[name] = line
    devices: dict[str, FenceDevice] = {}
    for node, (settings, line) in fences.items():
        agent = settings.pop("agent", None)
        if agent is None:
            diags.error(line, 1, f"fence {node}: the section names no agent (agent fence_...)")
            continue
        devices[node] = FenceDevice(node, agent, FrozenMap(settings), line.at(1))
    config = _build(values, sections, path, diags)
    _check_backend(config, global_lines, diags)
    if devices:
        config = replace(config, fence_devices=FrozenMap(devices))
    return Parsed(config, diags.freeze())


def _build(values: dict[str, Any], sections: dict[tuple[str, str],
                                                     tuple[dict[str, Any], SourceLine]],
           path: str, diags: Diagnostics) -> ExtensionConfig:
    policy_fields = {f.name for f in fields(ResourcePolicy)}
    defaults = ResourcePolicy(**{k: v for k, v in values.items() if k in policy_fields})
    agents: dict[str, PolicyOverride] = {}
    resources: dict[str, PolicyOverride] = {}
    for (kind, name), (settings, line) in sections.items():
        override = PolicyOverride(kind, name, FrozenMap(settings), line.at(1))
        (agents if kind == "agent" else resources)[name] = override
    others = {k: v for k, v in values.items() if k not in policy_fields}
    return ExtensionConfig(defaults, FrozenMap(agents), FrozenMap(resources), path=path,
                           **others)


_FENCE_PARAM = re.compile(r"[a-z][a-z0-9_]*")

_ETCD_SETTINGS = ("etcd_endpoints", "etcd_prefix", "lease_ttl", "lease_margin")


def _check_backend(config: ExtensionConfig, lines: dict[str, SourceLine],
                   diags: Diagnostics) -> None:
    """The settings of cluster_backend etcd, taken together."""
    if config.cluster_backend != "etcd":
        for name in _ETCD_SETTINGS:
            if name in lines:
                diags.warning(lines[name], 1, f"{name} is not used: cluster_backend is "
                              f"{config.cluster_backend}")
        return
    for name in ("fence_command", "fence_before_takeover", "takeover_delay"):
        if name in lines:
            diags.warning(lines[name], 1, f"{name} is not used with cluster_backend etcd: "
                          "a node takes a group only once the holder's lease is gone")
    if not config.etcd_endpoints:
        diags.error(lines.get("cluster_backend"), 1, "cluster_backend etcd needs "
                    "etcd_endpoints (the etcd members' client URLs)")
    problem = lease_problem(config.lease_ttl, config.lease_margin)
    if problem is not None:
        where = lines.get("lease_margin") or lines.get("lease_ttl")
        diags.error(where, 1, f"lease_margin and lease_ttl: {problem}")


def conntrackd_syncs(path: str | None) -> bool:
    """Whether `path` (conntrackd_conf) is a conntrackd configuration with a `Sync {`
    section outside comments (read up to 1 MiB; a missing file: no)."""
    if path is None:
        return False
    try:
        with open(path, errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return False
    return any(line.split("#", 1)[0].split()[:2] in (["Sync", "{"], ["Sync{"])
               for line in text.splitlines())


def parse(text: str, path: str = DEFAULT_PATH) -> ExtensionConfig:
    """Parse vigil.cf or raise `ConfigErrors` naming every mistake."""
    return analyze(text, path).unwrap()


_GLOBAL_ONLY = ("fence_command", "fence_timeout", "fence_before_takeover", "takeover_delay",
                "control_socket", "notify_command", "metrics_address", "garp_count",
                "garp_interval", "garp_refresh", "duplicate_probe", "fsck", "drbd_backend",
                "smtp_host", "smtp_port", "mail_from", "state_dir", "reboot_command",
                "lvs_sync_daemon", "director_announce", "announce_holddown",
                "conntrackd_conf", "announce_linger", "cluster_backend", "etcd_endpoints",
                "etcd_prefix", "lease_ttl", "lease_margin")


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return format_time(value)
    return str(value)


def render(config: ExtensionConfig) -> str:
    """A vigil.cf text that parses back to an equal model (non-default settings only)."""
    out = ["# vigil.cf written by vigil"]
    base = ResourcePolicy()
    for f in fields(ResourcePolicy):
        value = getattr(config.defaults, f.name)
        if value != getattr(base, f.name):
            out.append(f"{f.name} {_render_value(value)}")
    plain = ExtensionConfig()
    for name in _GLOBAL_ONLY:
        value = getattr(config, name)
        if value != getattr(plain, name):
            out.append(f"{name} {'off' if value is None else _render_value(value)}")
    for overrides in (config.agents, config.resources):
        for override in overrides.values():
            out.append("")
            out.append(f"{override.kind} {override.name}")
            for key, value in override.settings.items():
                out.append(f"\t{key} {_render_value(value)}")
    for device in config.fence_devices.values():
        out.append("")
        out.append(f"fence {device.node}")
        out.append(f"\tagent {device.agent}")
        for key, value in device.params.items():
            out.append(f"\t{key} {value}")
    return "\n".join(out) + "\n"


def unsupported(config: ExtensionConfig) -> list[str]:
    """Settings vigil accepts but does not carry out (yet): said by check and at start."""
    out = []
    if config.state_dir != ExtensionConfig.state_dir:
        out.append(f"state_dir {config.state_dir} is not used yet: vigil keeps heartbeat's "
                   "identity in /var/lib/heartbeat and its own state under /var/lib/vigil")
    return out


__all__ = ["DEFAULT_PATH", "KEYWORDS", "POLICY_KEYWORDS", "ExtensionConfig", "PolicyOverride",
           "ResourcePolicy", "analyze", "parse", "render"]
