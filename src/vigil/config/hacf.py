"""`/etc/ha.d/ha.cf`: heartbeat 3.0.6's main file, read unchanged.

Heartbeat reads ha.cf line by line and *order matters*: `udpport` applies to
the media declared after it, `baud` to the serial links after it. A line is
``directive value...`` with `#` comments; for most directives every word
(split on blanks *and commas*) is applied in turn, so ``node a, b`` declares
two nodes and ``keepalive 1 2`` ends with 2. A few directives take the whole
rest of the line (`stonith`, `stonith_host`, `apiauth`, `respawn`,
`failfast`, `mcast`, `ucast`, ...).

The model, `HaCf`, has every default filled in the way heartbeat computes
them: keepalive 1 s, deadtime 30 s, warntime deadtime/2, initdead from
deadtime (= deadtime above 10 s, 12 s below 6 s, else twice deadtime),
deadping = deadtime, udpport 694, auto_failback legacy. Times are float
seconds rounded to the millisecond, as heartbeat rounds them.

Public API:

* `analyze(text, path) -> Parsed[HaCf]`; `parse(text, path) -> HaCf` (raises
  `ConfigErrors`); `render(config) -> str` (a file that parses to the same model).
* `validate(config)`: heartbeat's start-up checks on the whole file (at least
  one medium and one node, no autojoin with haresources, the legacy
  auto_failback warning); `validate_for_host(config, hostname)`: the checks
  that need `uname -n` (this node must be listed). `analyze` itself reports
  syntax, values and the timing rules only, so a template parses cleanly.
* `media_for_host(config, local_addresses, resolve=None)`: the media this host
  really uses (a `ucast`/`ucast6` to one of its own addresses is dropped, so
  one file serves both nodes).
* `KEYWORDS`: the directive table (name, value parser, default, doc, status).
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from vigil.config.base import (
    NO_JSON,
    BoolValue,
    ChoiceValue,
    Diagnostic,
    Diagnostics,
    FrozenMap,
    IntValue,
    IPAddress,
    Keyword,
    KeywordStatus,
    Parsed,
    PathValue,
    Severity,
    SourceLine,
    StrValue,
    TimeValue,
    Token,
    ValueProblem,
    format_time,
    is_hostname,
    keyword_table,
    parse_bool,
    parse_int,
    parse_ip,
    physical_lines,
    split_words,
    strip_comment,
)
from vigil.errors import Location

DEFAULT_PATH = "/etc/ha.d/ha.cf"

#: Heartbeat splits the words of option directives on blanks and commas.
#: heartbeat 3.0.6's keepalive and deadtime when ha.cf gives none (seconds); the
#: membership timers and `vigil check` take them from here
DEFAULT_KEEPALIVE = 1.0
DEFAULT_DEADTIME = 30.0

DELIMS = ", \t\f\v\r"
WHITESPACE = " \t\f\v\r"

PACEMAKER_HINT = (
    "vigil manages resources from haresources (heartbeat's R1 mode) and has no CRM; "
    "a cluster run by Pacemaker belongs on Pacemaker with Corosync "
    "(https://clusterlabs.org/pacemaker/): keep it there, or remove 'crm' to let vigil "
    "run the groups in /etc/ha.d/haresources"
)


class AutoFailback(enum.StrEnum):
    """`auto_failback`: on (groups return home), off (stay put), legacy (old protocol)."""

    ON = "on"
    OFF = "off"
    LEGACY = "legacy"


# ---------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class Bcast:
    """UDP broadcast heartbeats on one interface (`bcast eth0 eth1` gives two)."""

    interface: str
    port: int = 694
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    kind = "bcast"


@dataclass(frozen=True)
class Mcast:
    """IPv4 multicast: `mcast dev group port ttl loop`."""

    interface: str
    group: ipaddress.IPv4Address
    port: int
    ttl: int = 1
    loop: int = 0
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    kind = "mcast"


@dataclass(frozen=True)
class Mcast6:
    """IPv6 multicast: `mcast6 dev group port hops loop`."""

    interface: str
    group: ipaddress.IPv6Address
    port: int
    hops: int = 1
    loop: int = 0
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    kind = "mcast6"


@dataclass(frozen=True)
class Ucast:
    """IPv4 unicast to one peer (address or host name): `ucast dev peer`."""

    interface: str
    peer: str
    port: int = 694
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    kind = "ucast"


@dataclass(frozen=True)
class Ucast6:
    """IPv6 unicast to one peer: `ucast6 dev peer[%scope]`."""

    interface: str
    peer: str
    port: int = 694
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    kind = "ucast6"

    @property
    def address(self) -> str:
        return self.peer.split("%", 1)[0]


@dataclass(frozen=True)
class Serial:
    """A serial link (`serial /dev/ttyS0`). Parsed so the file loads; vigil cannot use it."""

    device: str
    baud: int = 19200
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    kind = "serial"


Medium = Bcast | Mcast | Mcast6 | Ucast | Ucast6 | Serial
UDP_MEDIA = (Bcast, Ucast, Ucast6)  # the media that use `udpport`


@dataclass(frozen=True)
class PingNode:
    """A pseudo cluster member judged by ICMP echo: `ping`, `ping6` or `ping_group`.

    `ping A B` gives two ping nodes named A and B; `ping_group NAME A B` one node
    NAME that is up while *any* of its addresses answers.
    """

    name: str
    addresses: tuple[str, ...]
    kind: str = "ping"  # ping | ping6 | ping_group
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)


@dataclass(frozen=True)
class StonithDevice:
    """A heartbeat STONITH device.

    `stonith TYPE CONFIGFILE` (kind "stonith") or `stonith_host HOST TYPE PARAMS...`
    (kind "stonith_host", HOST is the node the device is reachable from, `*` any).
    """

    kind: str
    type: str
    params: str = ""
    host: str = "*"
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    def usable_from(self, hostname: str) -> bool:
        return self.host == "*" or self.host == hostname.lower()


@dataclass(frozen=True)
class Respawn:
    """`respawn USER COMMAND...` (or `failfast`): a client heartbeat starts and restarts."""

    user: str
    command: str
    failfast: bool = False
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)

    @property
    def path(self) -> str:
        return self.command.split()[0] if self.command.split() else ""

    @property
    def is_ipfail(self) -> bool:
        """ipfail's job (fail over when this node loses its ping nodes) is built into vigil."""
        return self.path.rsplit("/", 1)[-1] == "ipfail"


@dataclass(frozen=True)
class ApiAuth:
    """`apiauth CLIENT uid=a,b gid=c,d`: who may use heartbeat's client API."""

    client: str
    uids: tuple[str, ...] = ()
    gids: tuple[str, ...] = ()
    location: Location | None = field(default=None, compare=False, repr=False,
                                      metadata=NO_JSON)


@dataclass(frozen=True)
class HaCf:
    """ha.cf with heartbeat's defaults filled in (times in float seconds).

    `media` keeps file order, each medium with the `udpport` (or `baud`) in
    effect where it was declared; `nodes` are lower-cased as heartbeat does;
    `where` maps each directive set (and ``node:NAME``, ``env:NAME``) to the
    place it was set, for messages; it takes no part in equality.
    """

    keepalive: float = DEFAULT_KEEPALIVE
    deadtime: float = DEFAULT_DEADTIME
    warntime: float = DEFAULT_DEADTIME / 2
    initdead: float = DEFAULT_DEADTIME
    deadping: float = DEFAULT_DEADTIME
    udpport: int = 694
    baud: int = 19200
    media: tuple[Medium, ...] = ()
    nodes: tuple[str, ...] = ()
    ping_nodes: tuple[PingNode, ...] = ()
    auto_failback: AutoFailback = AutoFailback.LEGACY
    stonith: tuple[StonithDevice, ...] = ()
    watchdog: str | None = None
    respawn: tuple[Respawn, ...] = ()
    apiauth: tuple[ApiAuth, ...] = ()
    env: FrozenMap[str, str] = field(default_factory=FrozenMap)
    realtime: bool = True
    rtprio: int | None = None
    debug: int = 0
    logfile: str | None = None
    debugfile: str | None = None
    logfacility: str | None = None
    use_logd: bool | None = None
    conn_logd_time: float = 60.0
    log_badpack: bool = True
    syslogmsgfmt: bool = True
    hopfudge: int = 1
    max_rexmit_delay: float = 0.25
    autojoin: str = "none"
    uuidfrom: str = "file"
    hbgenmethod: str = "file"
    cluster: str = "linux-ha"
    msgfmt: str = "classic"
    compression: str = "zlib"
    compression_threshold: int = 2
    traditional_compression: bool = False
    coredumps: bool = True
    coreroot: str | None = None
    memreserve: int = 6500
    normalpoll: bool = True
    use_apphbd: bool = False
    quorum_server: str | None = None
    crm: str = "off"
    crm_daemon_dir: str | None = None
    crmd_spawns_pengine: bool | None = None
    record_config_changes: bool = True
    record_pengine_inputs: bool = True
    enable_config_writes: bool = True
    path: str = field(default=DEFAULT_PATH, compare=False, metadata=NO_JSON)
    where: FrozenMap[str, Location] = field(
        default_factory=FrozenMap, compare=False, repr=False, metadata=NO_JSON)

    @property
    def heartbeat_media(self) -> tuple[Medium, ...]:
        """The media vigil can use (everything but serial links)."""
        return tuple(m for m in self.media if not isinstance(m, Serial))

    def location_of(self, key: str) -> Location:
        """Where a directive (or `node:NAME`) was set, or just the file."""
        return self.where.get(key, Location(self.path))

    def has_node(self, name: str) -> bool:
        return name.lower() in self.nodes


# ---------------------------------------------------------------------------
# The directive table

_IGNORED_LOGD = "vigil logs through its own non-blocking logger; there is no logd to talk to"
_IGNORED_PCMK = "Pacemaker-only setting; vigil runs haresources (R1) mode"
_FACILITIES = (
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog",
    "user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7", "none",
)

# Option directives: each word of the value is applied in turn.
KEYWORDS = keyword_table(
    Keyword("keepalive", "interval between heartbeat packets", TimeValue(0, True),
            DEFAULT_KEEPALIVE),
    Keyword("deadtime", "silence after which a node is declared dead", TimeValue(0),
            DEFAULT_DEADTIME),
    Keyword("warntime", "silence after which a late heartbeat is logged",
            TimeValue(0, True), None),
    Keyword("initdead", "deadtime used right after start-up (slow networks)",
            TimeValue(0), None),
    Keyword("deadping", "deadtime for ping nodes", TimeValue(0), None),
    Keyword("udpport", "UDP port of bcast/ucast/ucast6 media declared after it",
            IntValue(1, 65535, "port"), 694),
    Keyword("baud", "serial speed of serial links declared after it",
            ChoiceValue("9600", "19200", "38400", "57600", "115200", "230400", "460800"),
            19200),
    Keyword("node", "a cluster member, named as `uname -n` prints it", StrValue("a node name")),
    Keyword("auto_failback", "on: groups go back to their home node; off: they stay; legacy",
            None, AutoFailback.LEGACY),
    Keyword("nice_failback", "obsolete spelling of auto_failback", BoolValue(),
            status=KeywordStatus.DEPRECATED,
            reason="'nice_failback on' means 'auto_failback off', 'off' means legacy"),
    Keyword("watchdog", "watchdog device fed while heartbeats flow", PathValue()),
    Keyword("realtime", "lock memory and use realtime scheduling", BoolValue(), True),
    Keyword("rtprio", "realtime priority (SCHED_FIFO)", IntValue(1, 99, "priority")),
    Keyword("debug", "debug level", IntValue(0, 255, "debug level"), 0),
    Keyword("logfile", "file for non-debug messages", StrValue("a file name")),
    Keyword("debugfile", "file for debug messages", StrValue("a file name")),
    Keyword("logfacility", "syslog facility, or none", ChoiceValue(*_FACILITIES)),
    Keyword("use_logd", "log through heartbeat's logging daemon", BoolValue(),
            status=KeywordStatus.IGNORED, reason=_IGNORED_LOGD),
    Keyword("conn_logd_time", "reconnect interval to the logging daemon", TimeValue(0, True),
            60.0, status=KeywordStatus.IGNORED, reason=_IGNORED_LOGD),
    Keyword("log_badpack", "warn about bad or unauthenticated packets", BoolValue(), True,
            status=KeywordStatus.IGNORED, reason="vigil counts every rejected packet (vigil "
            "status) and logs each kind at most once every 5 s, whatever this says"),
    Keyword("syslogmsgfmt", "syslog line format in log files", BoolValue(), True,
            status=KeywordStatus.IGNORED,
            reason="vigil writes its own `event key=value` lines"),
    Keyword("hopfudge", "extra hops a forwarded packet may travel (serial rings)",
            IntValue(0, 255, "hop count"), 1, status=KeywordStatus.IGNORED,
            reason="only serial rings forward packets; vigil has no serial links"),
    Keyword("max_rexmit_delay", "longest random delay before answering a retransmit request",
            IntValue(1, None, "delay in milliseconds"), 0.25),
    Keyword("autojoin", "let unlisted authenticated nodes join: none, other, any",
            ChoiceValue("none", "other", "any", case_sensitive=False), "none"),
    Keyword("uuidfrom", "node UUID from a file or from the node name",
            ChoiceValue("file", "nodename"), "file", status=KeywordStatus.IGNORED,
            reason="vigil keeps the node's uuid in hb_uuid in its state directory (file)"),
    Keyword("hbgenmethod", "how the generation (restart) number is kept",
            ChoiceValue("file", "time"), "file"),
    Keyword("cluster", "cluster name", StrValue("a name"), "linux-ha",
            status=KeywordStatus.IGNORED, reason="heartbeat's haresources mode sends no "
            "cluster name either"),
    Keyword("msgfmt", "wire format", ChoiceValue("classic", "netstring"), "classic",
            status=KeywordStatus.IGNORED, reason="signed packets are always in the netstring "
            "format, as heartbeat 3.0.6 itself sends them"),
    Keyword("compression", "compression module for large messages (sending, with "
            "traditional_compression on; any is read)", ChoiceValue("zlib", "bz2"), "zlib"),
    Keyword("compression_threshold", "compress messages larger than this many KB",
            IntValue(1, None, "threshold"), 2),
    Keyword("traditional_compression", "compress whole messages including headers",
            BoolValue(), False),
    Keyword("env", "NAME=value put in the environment of respawned programs",
            StrValue("NAME=value", r"[A-Za-z_][A-Za-z0-9_]*=.*")),
    Keyword("coredumps", "let heartbeat dump core", BoolValue(), True,
            status=KeywordStatus.IGNORED,
            reason="a Python daemon; core dumps follow the system's settings"),
    Keyword("coreroot", "root directory for core dumps", StrValue("a directory"),
            status=KeywordStatus.IGNORED,
            reason="a Python daemon; core dumps follow the system's settings"),
    Keyword("memreserve", "kilobytes heartbeat preallocates", IntValue(1, None, "size"), 6500,
            status=KeywordStatus.IGNORED, reason="vigil does not preallocate memory"),
    Keyword("normalpoll", "use the system poll()", BoolValue(), True,
            status=KeywordStatus.IGNORED, reason="vigil uses asyncio's event loop"),
    Keyword("use_apphbd", "register with the application heartbeat daemon", BoolValue(), False,
            status=KeywordStatus.IGNORED, reason="vigil does not use apphbd"),
    Keyword("quorum_server", "quorumd server (CCM/Pacemaker only)", StrValue("a host"),
            status=KeywordStatus.IGNORED, reason=_IGNORED_PCMK),
    Keyword("crm", "hand resource management to Pacemaker", None, "off"),
    Keyword("pacemaker", "same as crm", None, "off"),
    Keyword("crm_daemon_dir", "where Pacemaker's daemons live", StrValue("a directory"),
            status=KeywordStatus.IGNORED, reason=_IGNORED_PCMK),
    Keyword("crmd_spawns_pengine", "let crmd start the policy engine", BoolValue(),
            status=KeywordStatus.IGNORED, reason=_IGNORED_PCMK),
    Keyword("record_config_changes", "record CIB changes", BoolValue(), True,
            status=KeywordStatus.IGNORED, reason=_IGNORED_PCMK),
    Keyword("record_pengine_inputs", "record policy engine inputs", BoolValue(), True,
            status=KeywordStatus.IGNORED, reason=_IGNORED_PCMK),
    Keyword("enable_config_writes", "write CIB changes to disk", BoolValue(), True,
            status=KeywordStatus.IGNORED, reason=_IGNORED_PCMK),
    # Media and ping nodes.
    Keyword("bcast", "UDP broadcast heartbeats on the listed interfaces", StrValue("an interface")),
    Keyword("mcast", "IPv4 multicast: dev group port ttl loop"),
    Keyword("mcast6", "IPv6 multicast: dev group port hops loop"),
    Keyword("ucast", "IPv4 unicast: dev peer (a line naming this host's own address is ignored)"),
    Keyword("ucast6", "IPv6 unicast: dev peer[%scope]"),
    Keyword("serial", "serial links", StrValue("a device"), status=KeywordStatus.UNSUPPORTED,
            reason="vigil does not support serial heartbeat links; use bcast, mcast or ucast"),
    Keyword("ping", "ping nodes (each address is one pseudo member)", StrValue("an address")),
    Keyword("ping6", "IPv6 ping nodes", StrValue("an address")),
    Keyword("ping_group", "one ping node NAME, up while any listed address answers"),
    Keyword("hbaping", "Fibre Channel HBA as ping node", StrValue("a card name"),
            status=KeywordStatus.UNSUPPORTED,
            reason="Fibre Channel HBA ping nodes are not supported (heartbeat never shipped it "
                   "in Debian either)"),
    # Whole-line directives.
    Keyword("stonith", "STONITH device: type config-file"),
    Keyword("stonith_host", "STONITH device: from-host|* type params..."),
    Keyword("apiauth", "API client access: client uid=... gid=...",
            status=KeywordStatus.IGNORED,
            reason="vigil has no heartbeat API clients; its control socket is root-only"),
    Keyword("respawn", "program heartbeat starts and restarts: user path [args]"),
    Keyword("failfast", "like respawn, but the node reboots when the program dies"),
)

#: Directives whose value is the whole rest of the line.
WHOLE_LINE = frozenset({
    "mcast", "mcast6", "ucast", "ucast6", "ping_group", "stonith", "stonith_host", "apiauth",
    "respawn", "failfast",
})
#: Scalar directives heartbeat refuses to see twice.
ONCE_ONLY = frozenset({"watchdog", "baud", "crm", "pacemaker"})

_CRM_OFF = frozenset({"off", "false", "no", "n", "0"})
_CRM_ON = frozenset({"on", "true", "yes", "y", "1", "respawn", "minimal", "manual", "ccm-only",
                     "valgrind"})


# ---------------------------------------------------------------------------
# Parsing


class _Builder:
    """Mutable state while reading a file; becomes a frozen `HaCf` at the end."""

    def __init__(self, path: str, diags: Diagnostics):
        self.path = path
        self.diags = diags
        self.values: dict[str, Any] = {}
        self.where: dict[str, tuple[SourceLine, int]] = {}
        self.media: list[Medium] = []
        self.nodes: list[str] = []
        self.pings: list[PingNode] = []
        self.stonith: list[StonithDevice] = []
        self.respawn: list[Respawn] = []
        self.apiauth: list[ApiAuth] = []
        self.env: dict[str, str] = {}
        self.udpport = 694
        self.baud = 19200
        self.first_udp_medium: SourceLine | None = None
        self.first_serial: SourceLine | None = None

    def set(self, name: str, value: Any, line: SourceLine, column: int) -> None:
        if name in self.values and name not in ONCE_ONLY:
            previous = self.where[name][0]
            self.diags.warning(
                line, column,
                f"{name} set again (first on line {previous.number}); the last value counts")
        self.values[name] = value
        self.where[name] = (line, column)

    def report(self, severity: Severity, key: str, message: str) -> None:
        """A problem about a directive, pointed at the line that set it (or the file)."""
        if key in self.where:
            line, column = self.where[key]
            self.diags.add(severity, line, column, message)
        else:
            self.diags.add(severity, None, 0, message)


def analyze(text: str, path: str = DEFAULT_PATH) -> Parsed[HaCf]:
    """Parse ha.cf, collecting every problem; never raises for bad input."""
    diags = Diagnostics(path)
    b = _Builder(path, diags)
    for line in physical_lines(text, path):
        _parse_line(b, line)
    config = _finish(b)
    return Parsed(config, diags.freeze())


def parse(text: str, path: str = DEFAULT_PATH) -> HaCf:
    """Parse ha.cf or raise `ConfigErrors` naming every mistake."""
    return analyze(text, path).unwrap()


def _parse_line(b: _Builder, line: SourceLine) -> None:
    content = strip_comment(line.text)
    words = split_words(content, WHITESPACE)
    if not words:
        return
    head = words[0]
    directive = head.text
    if directive == "udp":
        b.diags.warning(line, head.column, "'udp' is an old name for 'bcast'; read as bcast")
        directive = "bcast"
    kw = KEYWORDS.get(directive)
    if kw is None:
        message = f"unknown directive '{directive}'"
        close = difflib.get_close_matches(directive, list(KEYWORDS), n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        b.diags.error(line, head.column, message)
        return
    rest_start = head.column - 1 + len(head.text)
    rest = content[rest_start:]
    if directive in WHOLE_LINE:
        rest_tokens = split_words(rest, WHITESPACE, rest_start + 1)
        _WHOLE_LINE_HANDLERS[directive](b, line, head, rest_tokens, rest)
        return
    values = split_words(rest, DELIMS, rest_start + 1)
    if not values:
        b.diags.error(line, head.column, f"{directive} needs a value ({_expects(kw)})")
        return
    if directive in ONCE_ONLY and directive in b.values:
        b.diags.error(line, head.column,
                      f"{directive} given more than once (first on line "
                      f"{b.where[directive][0].number})")
        return
    if kw.status is KeywordStatus.IGNORED:
        b.diags.note(line, head.column, f"{directive} is accepted and ignored: {kw.reason}")
    handler = _OPTION_HANDLERS.get(directive, _set_option)
    for token in values:
        handler(b, line, kw, token)


def _expects(kw: Keyword) -> str:
    return kw.parser.expects if kw.parser is not None else "see ha.cf(5)"


def _value(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> Any:
    assert kw.parser is not None
    try:
        return kw.parser(token.text)
    except ValueProblem as problem:
        b.diags.error(line, token.column, f"{kw.name}: {problem}")
        return None


def _set_option(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    value = _value(b, line, kw, token)
    if value is not None:
        b.set(kw.attribute, value, line, token.column)


def _set_udpport(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    value = _value(b, line, kw, token)
    if value is None:
        return
    if b.first_udp_medium is not None:
        b.diags.warning(
            line, token.column,
            f"udpport comes after a medium that uses it (line {b.first_udp_medium.number}); "
            "heartbeat applies it only to media declared later: put udpport first")
    b.udpport = value
    b.set("udpport", value, line, token.column)


def _set_baud(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    value = _value(b, line, kw, token)
    if value is None:
        return
    if b.first_serial is not None:
        b.diags.warning(line, token.column,
                        f"baud comes after a serial link (line {b.first_serial.number}); "
                        "it applies only to serial links declared later")
    b.baud = int(value)
    b.set("baud", int(value), line, token.column)


def _set_max_rexmit_delay(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    value = _value(b, line, kw, token)
    if value is not None:
        b.set("max_rexmit_delay", value / 1000.0, line, token.column)


def _add_node(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    name = token.text.lower()
    if name in b.nodes:
        b.diags.warning(line, token.column,
                        f"node {token.text} listed twice (first on line "
                        f"{b.where['node:' + name][0].number})")
        return
    b.nodes.append(name)
    b.where["node:" + name] = (line, token.column)


def _set_auto_failback(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    word = token.text
    if word.lower() == "legacy":
        value = AutoFailback.LEGACY
    else:
        try:
            value = AutoFailback.ON if parse_bool(word) else AutoFailback.OFF
        except ValueProblem:
            b.diags.error(line, token.column,
                          f"auto_failback: bad value {word!r}: expected on, off or legacy")
            return
    b.set("auto_failback", value, line, token.column)


def _set_nice_failback(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    value = _value(b, line, kw, token)
    if value is None:
        return
    translated = AutoFailback.OFF if value else AutoFailback.LEGACY
    b.diags.warning(line, token.column,
                    f"nice_failback is obsolete: read as 'auto_failback {translated}'")
    b.set("auto_failback", translated, line, token.column)


def _set_crm(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    word = token.text.lower()
    if word in _CRM_OFF:
        b.set("crm", "off", line, token.column)
        return
    if word in _CRM_ON:
        b.diags.error(line, token.column, f"{kw.name} {token.text}: {PACEMAKER_HINT}")
        b.set("crm", word, line, token.column)
        return
    b.diags.error(line, token.column,
                  f"{kw.name}: bad value {token.text!r}: expected off (or on/respawn, "
                  "which vigil does not support)")


def _set_env(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    value = _value(b, line, kw, token)
    if value is None:
        return
    name, _, setting = value.partition("=")
    b.env[name] = setting
    b.where["env:" + name] = (line, token.column)


def _add_bcast(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    if b.first_udp_medium is None:
        b.first_udp_medium = line
    b.media.append(Bcast(token.text, b.udpport, line.at(token.column)))


def _add_serial(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    if b.first_serial is None:
        b.first_serial = line
    b.diags.warning(line, token.column,
                    f"serial link {token.text} ignored: {kw.reason}")
    b.media.append(Serial(token.text, b.baud, line.at(token.column)))


def _add_ping(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    version = 6 if kw.name == "ping6" else None
    try:
        addr = parse_ip(token.text, version)
    except ValueProblem:
        addr = None
    if addr is None and version == 6:
        b.diags.error(line, token.column, f"ping6: {token.text!r} is not an IPv6 address")
        return
    if addr is None and not _plausible_host(token.text):
        b.diags.error(line, token.column, f"{kw.name}: bad address {token.text!r}")
        return
    name = token.text
    if any(p.name == name for p in b.pings):
        b.diags.warning(line, token.column, f"ping node {name} listed twice")
        return
    b.pings.append(PingNode(name, (token.text,), kw.name, line.at(token.column)))


def _add_hbaping(b: _Builder, line: SourceLine, kw: Keyword, token: Token) -> None:
    b.diags.warning(line, token.column, f"hbaping {token.text} ignored: {kw.reason}")


def _plausible_host(text: str) -> bool:
    return is_hostname(text)


_OPTION_HANDLERS: dict[str, Callable[[_Builder, SourceLine, Keyword, Token], None]] = {
    "udpport": _set_udpport,
    "baud": _set_baud,
    "max_rexmit_delay": _set_max_rexmit_delay,
    "node": _add_node,
    "auto_failback": _set_auto_failback,
    "nice_failback": _set_nice_failback,
    "crm": _set_crm,
    "pacemaker": _set_crm,
    "env": _set_env,
    "bcast": _add_bcast,
    "serial": _add_serial,
    "ping": _add_ping,
    "ping6": _add_ping,
    "hbaping": _add_hbaping,
}


# Whole-line directives ------------------------------------------------------

def _need(b: _Builder, line: SourceLine, head: Token, tokens: list[Token], count: int,
          usage: str) -> bool:
    if len(tokens) < count:
        where = tokens[-1].column + len(tokens[-1].text) if tokens else head.column
        b.diags.error(line, where, f"{head.text} needs {usage}")
        return False
    return True


def _extra_words(b: _Builder, line: SourceLine, head: Token, tokens: list[Token],
                 count: int) -> None:
    if len(tokens) > count:
        b.diags.warning(line, tokens[count].column,
                        f"extra words after {head.text} are ignored (as heartbeat does)")


def _mcast(b: _Builder, line: SourceLine, head: Token, tokens: list[Token], rest: str) -> None:
    v6 = head.text == "mcast6"
    usage = "dev group port hops loop" if v6 else "dev group port ttl loop"
    if not _need(b, line, head, tokens, 5, usage):
        return
    dev, group, port, ttl, loop = tokens[:5]
    ok = True
    try:
        addr = ipaddress.ip_address(group.text)
        if addr.version != (6 if v6 else 4) or not addr.is_multicast:
            raise ValueError
    except ValueError:
        b.diags.error(line, group.column,
                      f"{head.text}: {group.text!r} is not an IPv{6 if v6 else 4} multicast "
                      f"group ({'ff00::/8' if v6 else '224.0.0.0/4'}; e.g. "
                      f"{'ff12::1:2' if v6 else '239.192.0.1'})")
        ok = False
    values: list[int] = []
    limits = [(port, 1, 65535, "port"), (ttl, 0, 255 if v6 else 4, "hops" if v6 else "ttl"),
              (loop, 0, 1, "loop")]
    for token, lo, hi, what in limits:
        try:
            values.append(parse_int(token.text, lo, hi, what))
        except ValueProblem as problem:
            b.diags.error(line, token.column, f"{head.text}: {problem}")
            ok = False
    _extra_words(b, line, head, tokens, 5)
    if not ok:
        return
    if values[2] == 1:
        b.diags.warning(line, loop.column,
                        f"{head.text}: loop 1 sends our own heartbeats back to us; use 0")
    if values[1] == 0:
        b.diags.warning(line, ttl.column,
                        f"{head.text}: {'hops' if v6 else 'ttl'} 0 keeps heartbeats on this host")
    medium: Medium
    if v6:
        medium = Mcast6(dev.text, addr, values[0], values[1], values[2], line.at(dev.column))
    else:
        medium = Mcast(dev.text, addr, values[0], values[1], values[2], line.at(dev.column))
    b.media.append(medium)


def _ucast(b: _Builder, line: SourceLine, head: Token, tokens: list[Token], rest: str) -> None:
    v6 = head.text == "ucast6"
    if not _need(b, line, head, tokens, 2, "dev peer-address"):
        return
    dev, peer = tokens[:2]
    if v6:
        address, _, scope = peer.text.partition("%")
        try:
            parse_ip(address, 6)
        except ValueProblem:
            b.diags.error(line, peer.column, f"ucast6: {address!r} is not an IPv6 address")
            return
        if scope and scope != dev.text:
            b.diags.error(line, peer.column,
                          f"ucast6: scope %{scope} does not match the interface {dev.text}")
            return
    else:
        try:
            parse_ip(peer.text, 4)
        except ValueProblem:
            if not _plausible_host(peer.text) or peer.text.replace(".", "").isdigit():
                b.diags.error(line, peer.column,
                              f"ucast: {peer.text!r} is neither an IPv4 address nor a host name")
                return
    _extra_words(b, line, head, tokens, 2)
    if b.first_udp_medium is None:
        b.first_udp_medium = line
    cls = Ucast6 if v6 else Ucast
    b.media.append(cls(dev.text, peer.text, b.udpport, line.at(dev.column)))


def _ping_group(b: _Builder, line: SourceLine, head: Token, tokens: list[Token],
                rest: str) -> None:
    if not _need(b, line, head, tokens, 2, "a name and at least one address"):
        return
    name = tokens[0].text
    addresses: list[str] = []
    for token in tokens[1:]:
        try:
            parse_ip(token.text)
        except ValueProblem:
            if not _plausible_host(token.text):
                b.diags.error(line, token.column, f"ping_group: bad address {token.text!r}")
                continue
        addresses.append(token.text)
    if any(p.name == name for p in b.pings):
        b.diags.error(line, tokens[0].column, f"ping node {name} defined twice")
        return
    if addresses:
        b.pings.append(PingNode(name, tuple(addresses), "ping_group", line.at(tokens[0].column)))


def _stonith(b: _Builder, line: SourceLine, head: Token, tokens: list[Token], rest: str) -> None:
    if not _need(b, line, head, tokens, 2, "a STONITH type and its config file"):
        return
    params = rest.strip()[len(tokens[0].text):].strip()
    b.stonith.append(StonithDevice("stonith", tokens[0].text, params, "*",
                                   line.at(tokens[0].column)))


def _stonith_host(b: _Builder, line: SourceLine, head: Token, tokens: list[Token],
                  rest: str) -> None:
    if not _need(b, line, head, tokens, 2, "a host (or *), a STONITH type and its parameters"):
        return
    host, stype = tokens[0], tokens[1]
    params = rest[stype.column - 1 - (head.column - 1 + len(head.text)) + len(stype.text):]
    b.stonith.append(StonithDevice("stonith_host", stype.text, params.strip(),
                                   host.text.lower(), line.at(host.column)))


def _apiauth(b: _Builder, line: SourceLine, head: Token, tokens: list[Token], rest: str) -> None:
    kw = KEYWORDS["apiauth"]
    if not tokens:
        b.diags.error(line, head.column, "apiauth needs a client name and uid= or gid=")
        return
    client = tokens[0].text
    uids: tuple[str, ...] = ()
    gids: tuple[str, ...] = ()
    seen: set[str] = set()
    for token in tokens[1:]:
        key, eq, value = token.text.partition("=")
        if not eq or key not in ("uid", "gid"):
            b.diags.error(line, token.column,
                          f"apiauth: expected uid=LIST or gid=LIST, got {token.text!r}")
            return
        if key in seen:
            b.diags.error(line, token.column, f"apiauth: {key}= given twice")
            return
        seen.add(key)
        names = tuple(v for v in value.split(",") if v)
        if key == "uid":
            uids = names
        else:
            gids = names
    if not seen:
        b.diags.error(line, tokens[0].column, "apiauth needs uid= or gid=")
        return
    if any(a.client == client for a in b.apiauth):
        b.diags.error(line, tokens[0].column, f"apiauth for {client} given twice")
        return
    b.diags.note(line, head.column, f"apiauth is accepted and ignored: {kw.reason}")
    b.apiauth.append(ApiAuth(client, uids, gids, line.at(tokens[0].column)))


def _respawn(b: _Builder, line: SourceLine, head: Token, tokens: list[Token], rest: str) -> None:
    if not _need(b, line, head, tokens, 2, "a user and the full path of a program"):
        return
    user, program = tokens[0], tokens[1]
    if not program.text.startswith("/"):
        b.diags.error(line, program.column,
                      f"{head.text}: {program.text!r} is not a full path name")
        return
    offset = program.column - 1 - (head.column - 1 + len(head.text))
    command = rest[offset:].strip()
    entry = Respawn(user.text, command, head.text == "failfast", line.at(program.column))
    if entry.is_ipfail:
        b.diags.note(line, program.column,
                     "ipfail is not started: vigil does its job itself (ping nodes decide "
                     "which node has better connectivity)")
    b.respawn.append(entry)


_WHOLE_LINE_HANDLERS: dict[str, Callable[[_Builder, SourceLine, Token, list[Token], str], None]] = {
    "mcast": _mcast,
    "mcast6": _mcast,
    "ucast": _ucast,
    "ucast6": _ucast,
    "ping_group": _ping_group,
    "stonith": _stonith,
    "stonith_host": _stonith_host,
    "apiauth": _apiauth,
    "respawn": _respawn,
    "failfast": _respawn,
}


# Defaults and validation ----------------------------------------------------

def default_warntime(deadtime: float) -> float:
    """Heartbeat's warntime when none is given: half of deadtime, in whole milliseconds."""
    return (round(deadtime * 1000) // 2) / 1000.0


def computed_initdead(deadtime: float) -> float:
    """Heartbeat's initdead when none is given: deadtime above 10 s, 12 s below 6 s, else 2x."""
    if deadtime > 10.0:
        return deadtime
    if deadtime < 6.0:
        return 12.0
    return 2 * deadtime


def _finish(b: _Builder) -> HaCf:
    v = b.values
    keepalive = v.get("keepalive", DEFAULT_KEEPALIVE)
    deadtime = v.get("deadtime", DEFAULT_DEADTIME)
    warntime = v.get("warntime")
    if warntime is None:
        warntime = default_warntime(deadtime)
    initdead = v.get("initdead")
    if initdead is None:
        initdead = computed_initdead(deadtime)
    deadping = v.get("deadping")
    if deadping is None:
        deadping = deadtime
    err, warn = Severity.ERROR, Severity.WARNING

    if deadtime <= 2 * keepalive:
        b.report(err, "deadtime" if "deadtime" in v else "keepalive",
                 f"deadtime ({format_time(deadtime)}s) must be more than twice keepalive "
                 f"({format_time(keepalive)}s)")
    if initdead < deadtime:
        b.report(err, "initdead",
                 f"initdead ({format_time(initdead)}s) is smaller than deadtime "
                 f"({format_time(deadtime)}s)")
    elif initdead < 10.0:
        b.report(warn, "initdead" if "initdead" in v else "deadtime",
                 f"initdead ({format_time(initdead)}s) may be too small: it should be at "
                 "least 10s to allow for slow network start-up")
    if "deadping" in v and deadping <= 2 * keepalive:
        b.report(err, "deadping",
                 f"deadping ({format_time(deadping)}s) must be more than twice keepalive "
                 f"({format_time(keepalive)}s)")
    if "warntime" in v:
        if warntime >= deadtime:
            b.report(warn, "warntime",
                     f"warntime ({format_time(warntime)}s) is not below deadtime "
                     f"({format_time(deadtime)}s): no late-heartbeat warning comes "
                     "before a node is declared dead")
        elif warntime <= keepalive:
            b.report(warn, "warntime",
                     f"warntime ({format_time(warntime)}s) is not above keepalive "
                     f"({format_time(keepalive)}s): every heartbeat would be late")

    autojoin = v.get("autojoin", "none").lower()
    auto_failback = v.get("auto_failback", AutoFailback.LEGACY)
    scalars = {k: val for k, val in v.items() if k in _SCALAR_FIELDS}
    if "autojoin" in scalars:
        scalars["autojoin"] = autojoin
    return HaCf(
        keepalive=keepalive,
        deadtime=deadtime,
        warntime=warntime,
        initdead=initdead,
        deadping=deadping,
        udpport=b.udpport,
        baud=b.baud,
        media=tuple(b.media),
        nodes=tuple(b.nodes),
        ping_nodes=tuple(b.pings),
        auto_failback=auto_failback,
        stonith=tuple(b.stonith),
        respawn=tuple(b.respawn),
        apiauth=tuple(b.apiauth),
        env=FrozenMap(b.env),
        path=b.path,
        where=FrozenMap({k: line.at(col) for k, (line, col) in b.where.items()}),
        **scalars,
    )


_SCALAR_FIELDS = frozenset({
    "watchdog", "realtime", "rtprio", "debug", "logfile", "debugfile", "logfacility", "use_logd",
    "conn_logd_time", "log_badpack", "syslogmsgfmt", "hopfudge", "max_rexmit_delay", "autojoin",
    "uuidfrom", "hbgenmethod", "cluster", "msgfmt", "compression", "compression_threshold",
    "traditional_compression", "coredumps", "coreroot", "memreserve", "normalpoll", "use_apphbd",
    "quorum_server", "crm", "crm_daemon_dir", "crmd_spawns_pengine", "record_config_changes",
    "record_pengine_inputs", "enable_config_writes",
})


def _diag(config: HaCf, severity: Severity, key: str | None, message: str) -> Diagnostic:
    location = config.where.get(key) if key else None
    return Diagnostic(severity, location or Location(config.path), message, None)


def validate(config: HaCf, backend: str = "heartbeat") -> tuple[Diagnostic, ...]:
    """Heartbeat's start-up checks that need the whole file but not this host.

    Kept apart from `analyze` so that a template such as Debian's annotated
    example (everything commented out) *parses* cleanly while `vigil check`
    still says what is missing before it could run.
    """
    out: list[Diagnostic] = []
    err, warn = Severity.ERROR, Severity.WARNING
    if backend == "etcd":
        # vigil.cf's cluster_backend etcd: etcd's leases decide, for any number of nodes
        if config.media:
            out.append(Diagnostic(Severity.NOTE, config.media[0].location
                                  or Location(config.path), "heartbeat media are not used: "
                                  "vigil.cf says cluster_backend etcd", None))
        unused = [what for what, there in (
            ("respawn/failfast", config.respawn),
            ("stonith", config.stonith),
            ("deadtime/keepalive/warntime/initdead", any(
                k in config.where for k in ("deadtime", "keepalive", "warntime", "initdead"))))
            if there]
        if unused:
            out.append(_diag(config, warn, None, f"not used with vigil.cf's cluster_backend "
                             f"etcd: {', '.join(unused)} (a group's lease decides where it "
                             "runs; lease_ttl sets how fast it moves)"))
    elif not config.media:
        out.append(_diag(config, err, None,
                         "no heartbeat medium: add a bcast, mcast or ucast line"))
    elif not config.heartbeat_media:
        first = config.media[0].location
        out.append(Diagnostic(err, first or Location(config.path),
                              "no usable heartbeat medium: vigil does not support serial links; "
                              "add a bcast, mcast or ucast line", None))
    if not config.nodes and config.autojoin != "any":
        out.append(_diag(config, err, None,
                         "no nodes: list each cluster member on a 'node' line "
                         "(names as `uname -n` prints them)"))
    if len(config.nodes) > 2 and backend != "etcd":
        out.append(_diag(config, err, f"node:{config.nodes[2]}",
                         f"{len(config.nodes)} nodes: vigil runs haresources groups on a pair "
                         "(two nodes); the daemon refuses more (vigil.cf's cluster_backend etcd "
                         "takes any number)"))
    if config.autojoin != "none":
        out.append(_diag(config, err, "autojoin",
                         f"autojoin {config.autojoin} conflicts with haresources (R1) resource "
                         "management, as in heartbeat: list the nodes and use 'autojoin none'"))
    if not config.traditional_compression:
        for key in ("compression", "compression_threshold"):
            if key in config.where:
                out.append(_diag(config, Severity.NOTE, key, f"{key} has no effect without "
                                 "'traditional_compression on': heartbeat 3.0.6 compresses "
                                 "only Pacemaker's marked fields then, which haresources "
                                 "messages never have, and vigil sends nothing compressed "
                                 "either (it reads compressed messages whatever this says)"))
    if config.auto_failback is AutoFailback.LEGACY:
        out.append(_diag(config, warn, "auto_failback",
                         "auto_failback legacy (the default) is deprecated: set "
                         "'auto_failback on' or 'off'; legacy refuses standby/takeover requests"))
    return tuple(out)


def validate_for_host(config: HaCf, hostname: str) -> tuple[Diagnostic, ...]:
    """Heartbeat's start-up checks that depend on this machine's name (`uname -n`)."""
    out: list[Diagnostic] = []
    name = hostname.lower()
    if config.nodes and name not in config.nodes:
        listed = ", ".join(config.nodes)
        out.append(Diagnostic(
            Severity.ERROR, _first_node_location(config),
            f"this host ({hostname}) is not a node: ha.cf lists {listed}; node names must "
            "equal `uname -n`", None))
    for device in config.stonith:
        if device.host != "*" and device.host not in config.nodes:
            out.append(Diagnostic(Severity.WARNING, device.location or Location(config.path),
                                  f"stonith_host names {device.host}, which is not a node", None))
    return tuple(out)


def _first_node_location(config: HaCf) -> Location:
    for key, loc in config.where.items():
        if key.startswith("node:"):
            return loc
    return Location(config.path)


def media_for_host(config: HaCf, local_addresses: Iterable[str | IPAddress],
                   resolve: Callable[[str], Iterable[str]] | None = None,
                   ) -> tuple[Medium, ...]:
    """The media this host uses: serial dropped, and ucast lines to our own addresses dropped.

    Heartbeat lets one ha.cf serve both nodes by listing a `ucast` to each
    node's address; the line that points at the host itself is ignored there.
    `resolve` turns a peer host name into addresses (none given: names are kept).
    """
    local: set[IPAddress] = set()
    for a in local_addresses:
        try:
            local.add(ipaddress.ip_address(str(a).split("%", 1)[0]))
        except ValueError:
            continue
    out: list[Medium] = []
    for medium in config.heartbeat_media:
        if isinstance(medium, (Ucast, Ucast6)):
            peer = medium.address if isinstance(medium, Ucast6) else medium.peer
            candidates: list[str] = [peer]
            try:
                ipaddress.ip_address(peer)
            except ValueError:
                candidates = list(resolve(peer)) if resolve is not None else []
            if any(_is_local(c, local) for c in candidates):
                continue
        out.append(medium)
    return tuple(out)


def _is_local(text: str, local: set[IPAddress]) -> bool:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]) in local
    except ValueError:
        return False


def stonith_for_host(config: HaCf, hostname: str) -> tuple[StonithDevice, ...]:
    """The STONITH devices this host may use (`stonith_host` lines for it or for `*`)."""
    return tuple(d for d in config.stonith if d.usable_from(hostname))


# ---------------------------------------------------------------------------
# Rendering


_RENDER_SCALARS = (
    "logfacility", "logfile", "debugfile", "use_logd", "conn_logd_time", "debug", "watchdog",
    "realtime", "rtprio", "log_badpack", "syslogmsgfmt", "hopfudge", "max_rexmit_delay",
    "autojoin", "uuidfrom", "hbgenmethod", "cluster", "msgfmt", "compression",
    "compression_threshold", "traditional_compression", "coredumps", "coreroot", "memreserve",
    "normalpoll", "use_apphbd", "quorum_server", "crm", "crm_daemon_dir", "crmd_spawns_pengine",
    "record_config_changes", "record_pengine_inputs", "enable_config_writes",
)
_DEFAULTS = {f.name: f.default for f in fields(HaCf)}


def _render_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "max_rexmit_delay":
        return str(round(value * 1000))
    if isinstance(value, float):
        return format_time(value)
    return str(value)


def render(config: HaCf) -> str:
    """An ha.cf text for `config` that parses back to an equal model.

    Timings are always written (so nothing depends on computed defaults);
    other settings only when they differ from heartbeat's default.
    """
    out: list[str] = ["# ha.cf written by vigil"]

    def emit(name: str, value: Any) -> None:
        out.append(f"{name} {value}")

    for name in ("keepalive", "deadtime", "warntime", "initdead", "deadping"):
        emit(name, format_time(getattr(config, name)))
    for name in _RENDER_SCALARS:
        value = getattr(config, name)
        if value is not None and value != _DEFAULTS[name]:
            emit(name, _render_value(name, value))
    for name, setting in config.env.items():
        emit("env", f"{name}={setting}")
    udpport = 694
    baud = 19200
    for medium in config.media:
        if isinstance(medium, UDP_MEDIA) and medium.port != udpport:
            emit("udpport", medium.port)
            udpport = medium.port
        if isinstance(medium, Serial) and medium.baud != baud:
            emit("baud", medium.baud)
            baud = medium.baud
        if isinstance(medium, Bcast):
            emit("bcast", medium.interface)
        elif isinstance(medium, Mcast):
            emit("mcast", f"{medium.interface} {medium.group} {medium.port} {medium.ttl} "
                          f"{medium.loop}")
        elif isinstance(medium, Mcast6):
            emit("mcast6", f"{medium.interface} {medium.group} {medium.port} {medium.hops} "
                           f"{medium.loop}")
        elif isinstance(medium, Ucast):
            emit("ucast", f"{medium.interface} {medium.peer}")
        elif isinstance(medium, Ucast6):
            emit("ucast6", f"{medium.interface} {medium.peer}")
        elif isinstance(medium, Serial):
            emit("serial", medium.device)
    if config.udpport != udpport:
        emit("udpport", config.udpport)
    if config.baud != baud:
        emit("baud", config.baud)
    emit("auto_failback", config.auto_failback.value)
    for node in config.nodes:
        emit("node", node)
    for ping in config.ping_nodes:
        if ping.kind == "ping_group":
            emit("ping_group", " ".join((ping.name, *ping.addresses)))
        else:
            emit(ping.kind, ping.name)
    for device in config.stonith:
        if device.kind == "stonith":
            emit("stonith", f"{device.type} {device.params}".strip())
        else:
            emit("stonith_host", f"{device.host} {device.type} {device.params}".strip())
    for entry in config.respawn:
        emit("failfast" if entry.failfast else "respawn", f"{entry.user} {entry.command}")
    for auth in config.apiauth:
        parts = [auth.client]
        if auth.uids:
            parts.append("uid=" + ",".join(auth.uids))
        if auth.gids:
            parts.append("gid=" + ",".join(auth.gids))
        emit("apiauth", " ".join(parts))
    return "\n".join(out) + "\n"


__all__ = [
    "DEFAULT_PATH", "KEYWORDS", "ApiAuth", "AutoFailback", "Bcast", "HaCf", "Mcast", "Mcast6",
    "Medium", "PingNode", "Respawn", "Serial", "StonithDevice", "Ucast", "Ucast6", "analyze",
    "computed_initdead", "media_for_host", "parse", "render", "stonith_for_host",
    "validate", "validate_for_host",
]
