"""`ldirectord.cf`: ldirectord 4.12's configuration, read unchanged.

The rules are ldirectord's own (resource-agents 4.12, `read_config`):

* Global directives are ``name=value`` at column 0. Only whole-line comments
  are allowed there: ldirectord does not strip a trailing ``# ...`` from a
  global line, so neither does vigil.
* ``virtual=`` (IPv4, or a host name) / ``virtual6=`` (IPv6) at column 0 opens
  a virtual service; its directives follow indented by at least 4 spaces or a
  tab. In a section, ``#`` starts a comment anywhere. **Any line that is not
  indented ends the section, a blank line included**: an indented directive
  after a blank line is refused, as ldirectord refuses it.
* Forms of a virtual: ``ip:port``, ``[ipv6]:port``, ``host:service``, or a
  firewall mark (a number). Port names are looked up like ldirectord does
  (`getservbyname`); host names are kept as written and resolved when needed
  (`resolve_virtual`, `expand_reals`), so parsing does not need DNS.
* ``real=ADDR[->ADDR2][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"]
  [l:LOWER] [u:UPPER]``; IPv4 ranges expand to one real server each.
* ``connecttimeout`` and ``timeout`` are errors, as in ldirectord.

Defaults follow the code, not the man page: notably **quiescent defaults to
no** (the manual says yes). Values that ldirectord lets a virtual inherit
from the globals (checktimeout, negotiatetimeout, checkcount, failurecount,
checkinterval, quiescent, cleanstop, fallback, fallbackcommand, emailalert*,
smtp) are filled into each `VirtualService` with ldirectord's precedence, so
a consumer never has to look at the globals.

Public API: `LdirectordConfig`, `VirtualService`, `RealServer`, `Fallback`,
`CheckType`, `Forwarding`, `SERVICES`, `analyze`, `parse`, `render`,
`expand_reals`, `resolve_virtual`, `find_config`, `KEYWORDS`.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from vigil.config.base import (
    NO_JSON,
    Diagnostics,
    FrozenMap,
    Keyword,
    KeywordStatus,
    Parsed,
    SourceLine,
    keyword_table,
    physical_lines,
)
from vigil.config.ldirectord_keys import (
    CHECK_INTERVAL,
    CHECK_TIMEOUT,
    EMAIL_STATES,
    NEGOTIATE_TIMEOUT,
    CheckKeys,
    CheckType,
    ServiceKeys,
)
from vigil.config.resolve import Resolver, SystemResolver
from vigil.errors import Location

DEFAULT_NAME = "ldirectord.cf"


class Forwarding(enum.StrEnum):
    """How LVS forwards to a real server: direct routing, NAT, or IP-in-IP tunnel."""

    GATE = "gate"
    MASQ = "masq"
    IPIP = "ipip"


#: Every `service=` ldirectord knows, with the port that selects it by default.
SERVICES: FrozenMap[str, int | None] = FrozenMap({
    "dns": 53, "ftp": 21, "http": 80, "https": 443, "http_proxy": 3128, "imap": 143,
    "imaps": 993, "ldap": 389, "ldaps": 636, "nntp": 119, "mysql": 3306, "none": None,
    "oracle": 1521, "pop": 110, "pops": 995, "radius": 1812, "pgsql": 5432, "sip": 5060,
    "smtp": 25, "submission": 587, "simpletcp": None,
})
_PORT_TO_SERVICE = {port: name for name, port in SERVICES.items() if port is not None}



def service_for_port(port: int | None) -> str:
    """ldirectord's default service for a virtual port (`none` when unknown)."""
    return _PORT_TO_SERVICE.get(port, "none") if port is not None else "none"


# ---------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class RealServer:
    """One `real=` entry. `last` is set for an IPv4 range `first->last` (see `expand_reals`).

    Addresses are kept as written (host names too); IPv6 addresses without
    brackets. `port` 0 means "the virtual's port" (always the case for fwmark
    services). `request`/`receive` override the virtual's for this server.
    """

    address: str
    port: int
    forwarding: Forwarding
    weight: int = 1
    last: str | None = None
    request: str | None = None
    receive: str | None = None
    lower: int | None = None  # l:N, ipvsadm -y
    upper: int | None = None  # u:N, ipvsadm -x
    family: int = 4
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)


@dataclass(frozen=True)
class Fallback:
    """The server used while every real server is down (`fallback=ip[:port] [gate|masq|ipip]`)."""

    address: str
    port: int | None = None
    forwarding: Forwarding = Forwarding.GATE
    family: int = 4
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)


@dataclass(frozen=True)
class _VirtualAddress:
    """Where a virtual service listens: first in `VirtualService`'s fields (and so in
    its JSON), ahead of the check keys it shares with the director."""

    family: int
    protocol: str  # tcp | udp | fwm
    address: str | None = None  # None for fwmark services
    port: int | None = None
    fwmark: int | None = None
    reals: tuple[RealServer, ...] = ()
    fallback: Fallback | None = None


@dataclass(frozen=True)
class VirtualService(ServiceKeys, CheckKeys, _VirtualAddress):
    """One `virtual=`/`virtual6=` section with every inherited value filled in
    (the file's seconds are whole: the timeouts, checkinterval and emailalertfreq
    it holds are ints)."""

    scheduler: str = "wrr"
    persistent: int | None = None
    netmask: str | None = None
    schedflags: str | None = None
    ops: bool = False
    emailalert: str | None = None  # as written: comma-separated addresses
    load: str | None = None
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)

    @property
    def ident(self) -> str:
        """ldirectord's id of the service: ``tcp:1.2.3.4:80`` or ``fwm:1``."""
        if self.fwmark is not None:
            return f"fwm:{self.fwmark}"
        host = f"[{self.address}]" if self.family == 6 and self.address and \
            ":" in self.address else self.address
        return f"{self.protocol}:{host}:{self.port}"

    def check_port(self, real: RealServer) -> int | None:
        """The port a check connects to: checkport, else the real's, else the service's."""
        if self.checkport is not None:
            return self.checkport
        if real.port > 0:
            return real.port
        if self.port:
            return self.port
        return SERVICES.get(self.service)


@dataclass(frozen=True)
class LdirectordConfig:
    """ldirectord.cf: the global settings and the virtual services."""

    virtuals: tuple[VirtualService, ...] = ()
    checktimeout: int | None = None  # as written; each virtual holds the effective value
    negotiatetimeout: int | None = None
    checkinterval: int = CHECK_INTERVAL
    checkcount: int = 1
    failurecount: int = 1
    autoreload: bool = False
    callback: str | None = None
    fallback: Fallback | None = None
    fallback6: Fallback | None = None
    fallbackcommand: str | None = None
    logfile: str = "/var/log/ldirectord.log"
    emailalert: str | None = None
    emailalertfrom: str | None = None
    emailalertfreq: int = 0
    emailalertstatus: frozenset[str] = frozenset(EMAIL_STATES)
    smtp: str | None = None
    execute: tuple[str, ...] = ()
    supervised: bool = False
    fork: bool = False
    quiescent: bool = False
    readdquiescent: bool = False
    cleanstop: bool = True
    maintenancedir: str | None = None
    path: str = field(default=DEFAULT_NAME, compare=False, metadata=NO_JSON)

    @property
    def logs_to_syslog(self) -> bool:
        """ldirectord treats a logfile without a leading `/` as a syslog facility."""
        return not self.logfile.startswith("/")


#: what ldirectord's Sys::Syslog accepts as a logfile without a leading /
SYSLOG_FACILITIES = ("auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail",
                     "news", "syslog", "user", "uucp", "local0", "local1", "local2", "local3",
                     "local4", "local5", "local6", "local7")


# ---------------------------------------------------------------------------
# The keyword table (one record per directive)

_V = "virtual"
KEYWORDS = keyword_table(
    Keyword("checktimeout", "timeout of connect, ping and external checks (seconds)",
            default="negotiatetimeout if set, else 5"),
    Keyword("negotiatetimeout", "timeout of negotiate checks (seconds)",
            default="checktimeout if set, else 30"),
    Keyword("connecttimeout", "refused: replaced by negotiatetimeout",
            status=KeywordStatus.UNSUPPORTED, reason="deprecated in favour of negotiatetimeout"),
    Keyword("timeout", "refused: replaced by checktimeout and negotiatetimeout",
            status=KeywordStatus.UNSUPPORTED,
            reason="deprecated in favour of checktimeout and negotiatetimeout"),
    Keyword("checkinterval", "seconds between check rounds", default=CHECK_INTERVAL),
    Keyword("checkcount", "deprecated: attempts per ping check", default=1,
            status=KeywordStatus.DEPRECATED, reason="use failurecount"),
    Keyword("failurecount", "consecutive failures before a real server is taken out", default=1),
    Keyword("autoreload", "re-read the file when it changes (yes/no)", default=False),
    Keyword("callback", "program run with the file name when the file changed"),
    Keyword("fallback", "server used when all real servers are down (IPv4)"),
    Keyword("fallback6", "server used when all real servers are down (IPv6)"),
    Keyword("fallbackcommand", "run 'CMD start|stop vip:port proto' when the last real server "
            "goes down / the first comes back"),
    Keyword("logfile", "log file, or a syslog facility when it has no leading /",
            default="/var/log/ldirectord.log"),
    Keyword("emailalert", "mail these addresses on real server changes"),
    Keyword("emailalertfrom", "From address of alert mails"),
    Keyword("emailalertfreq", "repeat alerts every N seconds while a server is down (0: never)",
            default=0),
    Keyword("emailalertstatus", "daemon states that send mail: all, none or a list",
            default="all"),
    Keyword("smtp", "send mail through this SMTP server"),
    Keyword("execute", "also run ldirectord for another config file"),
    Keyword("supervised", "stay in the foreground (yes/no)", default=False),
    Keyword("fork", "one checking process per virtual service (yes/no)", default=False),
    Keyword("quiescent", "down servers get weight 0 instead of being removed (code default: no;"
            " the man page says yes)", default=False),
    Keyword("readdquiescent", "re-add a manually removed down server at weight 0", default=False),
    Keyword("cleanstop", "remove the virtual services on exit", default=True),
    Keyword("maintenancedir", "directory of per-server maintenance flag files"),
    Keyword("virtual", "an IPv4 (or host name) virtual service, or a firewall mark"),
    Keyword("virtual6", "an IPv6 virtual service"),
    # Per-virtual only.
    Keyword("real", "a real server (or an IPv4 range a->b)", field=_V),
    Keyword("real6", "an IPv6 real server", field=_V),
    Keyword("checktype", "connect, negotiate, ping, external, external-perl, on, off or N",
            default="negotiate", field=_V),
    Keyword("service", "protocol spoken by negotiate checks", default="from the port",
            field=_V),
    Keyword("checkcommand", "program for external checks", default="/bin/true", field=_V),
    Keyword("checkport", "port checks connect to", default="the real server's", field=_V),
    Keyword("request", "what a negotiate check asks for (quoted)", default="/", field=_V),
    Keyword("receive", "regular expression the answer must match (quoted)", default="",
            field=_V),
    Keyword("httpmethod", "GET or HEAD", default="GET", field=_V),
    Keyword("virtualhost", "Host header of http checks", field=_V),
    Keyword("login", "user name for checks (quoted)", field=_V),
    Keyword("passwd", "password for checks (quoted)", field=_V),
    Keyword("database", "database for SQL checks (quoted)", field=_V),
    Keyword("secret", "RADIUS secret (quoted)", field=_V),
    Keyword("load", "parsed and unused by ldirectord", field=_V, status=KeywordStatus.IGNORED,
            reason="ldirectord parses it but never uses it"),
    Keyword("scheduler", "IPVS scheduler", default="wrr", field=_V),
    Keyword("persistent", "persistence timeout in seconds", field=_V),
    Keyword("netmask", "persistence granularity", field=_V),
    Keyword("schedflags", "IPVS scheduler flags", field=_V),
    Keyword("protocol", "tcp, udp (default for port 53) or fwm", default="tcp", field=_V),
    Keyword("ops", "one-packet scheduling for UDP (yes/no)", default=False, field=_V),
    Keyword("monitorfile", "append each check result to this file", field=_V),
    Keyword("servicename", "name used in alert mails", field=_V),
    Keyword("comment", "text added to alert mails", field=_V),
)

_GLOBAL_ONLY = frozenset({"autoreload", "callback", "logfile", "execute", "supervised", "fork",
                          "readdquiescent", "maintenancedir", "emailalertfrom", "virtual",
                          "virtual6"})
_VIRTUAL_ALSO = frozenset({"checktimeout", "negotiatetimeout", "checkcount", "failurecount",
                           "checkinterval", "fallback", "fallback6", "fallbackcommand",
                           "quiescent", "cleanstop", "emailalert", "emailalertfreq",
                           "emailalertstatus", "smtp", "connecttimeout"})


# ---------------------------------------------------------------------------
# Parsing

_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*?)(6)?\s*=\s*(.*)$")
_WORD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)")


class _Problem(Exception):
    """Raised inside a directive handler; becomes an error at the handler's column."""

    def __init__(self, message: str, column_offset: int = 0):
        super().__init__(message)
        self.column_offset = column_offset


def _quoted(value: str, name: str) -> str:
    m = re.match(r'^"(.*)"', value)
    if not m:
        raise _Problem(f'{name} must be quoted: {name}="..."')
    if not m.group(1):
        raise _Problem(f"{name} is empty")
    return m.group(1)


def _maybe_quoted(value: str) -> str:
    m = re.match(r'^"(.*)"', value)
    return m.group(1) if m else value


def _number(digits: str) -> int:
    """A run of digits as a number; more digits than any setting could mean is a problem."""
    if len(digits) > 18:
        raise _Problem(f"number {digits[:20]}... ({len(digits)} digits) is out of range")
    return int(digits)


def _positive_int(value: str, name: str, allow_zero: bool = False,
                  warn: Callable[[str], None] | None = None) -> int:
    """ldirectord's `/(\\d+)/ && $1`: the first run of digits, which must not be 0."""
    m = re.search(r"\d+", value)
    if not m or (_number(m.group()) == 0 and not allow_zero):
        raise _Problem(f"invalid {name} {value!r}: expected a "
                       f"{'whole number' if allow_zero else 'positive whole number'}")
    if m.group() != value.strip() and warn is not None:
        warn(f"{name} {value!r} read as {_number(m.group())} (ldirectord uses the first number)")
    return _number(m.group())


def _yes_no(value: str, name: str) -> bool:
    if value not in ("yes", "no"):
        raise _Problem(f"{name} must be 'yes' or 'no'")
    return value == "yes"


def _email_status(value: str) -> frozenset[str]:
    words = [w for w in re.split(r"\s*,\s*", value.strip())]
    if "none" in words:
        if len(words) > 1:
            others = [w for w in words if w != "none"]
            raise _Problem(f'invalid email alert status: "{others[0]}" specified with "none"')
        return frozenset()
    states: set[str] = set()
    for word in words:
        if word == "all":
            states.update(EMAIL_STATES)
        elif word in EMAIL_STATES:
            states.add(word)
        else:
            raise _Problem(f'invalid email alert status at: "{word}"')
    return frozenset(states)


def _smtp(value: str) -> str:
    m = re.match(r"^[0-9A-Za-z._+-]+", value)
    if not m:
        raise _Problem("invalid SMTP server address")
    return m.group()


def _email(value: str) -> str:
    address = value
    m = re.fullmatch(r'"([^"]*)"', address)
    if m:
        address = m.group(1)
    if not address:
        raise _Problem("no email address specified")
    return address


def _parse_fallback(value: str, family: int, protocol: str | None,
                    resolver: Resolver, default_port: int | None,
                    location: Location) -> Fallback:
    """`ip|host[:port] [gate|masq|ipip]`, as ldirectord's parse_fallback."""
    m = re.match(r"^(\S+)(?:\s+(\S+))?\s*$", value.strip())
    if not m:
        raise _Problem(f"invalid fallback server: {value}")
    server, fwd = m.group(1), m.group(2)
    port_text: str | None = None
    pm = re.search(r":(\d+|[A-Za-z0-9_-]+)$", server)
    if pm and not (family == 6 and not server.startswith("[") and server.count(":") > 1):
        port_text = pm.group(1)
        server = server[: pm.start()]
    if family == 6 and server.startswith("[") and server.endswith("]"):
        server = server[1:-1]
    if not server:
        raise _Problem(f"invalid fallback server: {value}")
    _check_host(server, family, "fallback server")
    forwarding = Forwarding.GATE
    if fwd:
        try:
            forwarding = Forwarding(fwd)
        except ValueError:
            raise _Problem("forward method must be gate, masq or ipip") from None
    port: int | None = default_port
    if port_text is not None:
        port = resolver.service_port(port_text, protocol)
        if port is None:
            raise _Problem(f"invalid port for fallback server: {port_text}")
    return Fallback(server, port, forwarding, family, location)


def _check_host(host: str, family: int, what: str) -> None:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        if family == 6 and ":" in host:
            raise _Problem(f"invalid IPv6 address for {what}: {host}") from None
        if not re.fullmatch(r"[A-Za-z0-9._-]+", host) or host.replace(".", "").isdigit():
            raise _Problem(f"invalid address for {what}: {host}") from None
        return
    if addr.version != family:
        other = "virtual6/real6/fallback6" if family == 4 else "virtual/real/fallback"
        raise _Problem(f"{what} {host} is not an IPv{family} address (use {other})")


_REAL_RE = re.compile(
    r"^(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])"
    r"(->(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]))?"
    r"(:(\d+|[A-Za-z0-9_-]+))?\s+(.*)$")


def _check_pattern(text: str) -> None:
    """A receive= that is not a regular expression would fail every check: say it here."""
    from vigil.patterns import PatternProblem, compiled
    try:
        compiled(text)
    except PatternProblem as exc:
        raise _Problem(str(exc)) from None


def _parse_real(value: str, family: int, resolver: Resolver,
                location: Location) -> RealServer:
    m = _REAL_RE.match(value.strip())
    if not m:
        hint = ""
        typo = re.match(r"^([^\s:]+)::(\w+)", value.strip())
        if typo:
            hint = f" (did you mean {typo.group(1)}:{typo.group(2)}?)"
        raise _Problem("invalid address for real server (wrong format): expected "
                       f"ADDR[->ADDR2][:PORT] gate|masq|ipip [WEIGHT]{hint}")
    first, last, port_text, flags = m.group(1), m.group(3), m.group(5), m.group(6)
    first = first.strip("[]")
    last = last.strip("[]") if last else None
    _check_host(first, family, "real server")
    if last is not None:
        if family == 6:
            raise _Problem("address range for IPv6 is not supported")
        _check_host(last, family, "real server")
        try:
            a, b = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
        except ValueError:
            pass  # host names: checked when resolved
        else:
            if a > b:
                raise _Problem(f"invalid range {first}->{last}: the first address must not be "
                               "greater than the second")
    port = 0
    if port_text is not None:
        resolved = resolver.service_port(port_text, None)
        if resolved is None:
            raise _Problem(f"invalid port ({port_text}) for real server (could not resolve port)")
        port = resolved
    fm = re.match(r"^(\w+)(.*)$", flags)
    if not fm or fm.group(1) not in ("gate", "masq", "ipip"):
        raise _Problem("forward method must be gate, masq or ipip")
    forwarding = Forwarding(fm.group(1))
    rest = fm.group(2)
    weight = 1
    wm = re.match(r"^\s+(\d+)(.*)$", rest)
    if wm:
        weight = _number(wm.group(1))
        rest = wm.group(2)
    request = receive = None
    rm = re.match(r'^\s+"(.*)"[, ]\s*"(.*)"(.*)$', rest)
    if rm:
        request, receive, rest = rm.group(1), rm.group(2), rm.group(3)
        _check_pattern(receive)
        if not request.startswith("/"):
            request = "/" + request
    lower = upper = None
    lm = re.match(r"^\s+l:(\d+)(.*)$", rest)
    if lm:
        lower, rest = _number(lm.group(1)), lm.group(2)
    um = re.match(r"^\s+u:(\d+)(.*)$", rest)
    if um:
        upper, rest = _number(um.group(1)), um.group(2)
    if rest.strip():
        raise _Problem(f'invalid real server line, around "{rest.strip()}"')
    if weight > 65535:
        raise _Problem(f"weight {weight} is out of range 0..65535")
    return RealServer(first, port, forwarding, weight, last, request, receive, lower, upper,
                      family, location)


class _VirtualDraft:
    """A virtual section being read; values stay unset (None) until the end."""

    def __init__(self, family: int, line: SourceLine):
        self.family = family
        self.line = line
        self.values: dict[str, Any] = {}
        self.reals: list[tuple[str, SourceLine, int]] = []
        self.fallback: tuple[str, SourceLine, int] | None = None
        self.service_explicit = False


class _Reader:
    def __init__(self, text: str, path: str, resolver: Resolver):
        self.path = path
        self.resolver = resolver
        self.diags = Diagnostics(path)
        self.lines = list(physical_lines(text, path))
        self.globals: dict[str, Any] = {}
        self.global_fallback: dict[int, tuple[str, SourceLine, int]] = {}
        self.drafts: list[_VirtualDraft] = []
        self.after_blank_in_section: SourceLine | None = None

    # -- driving loop --------------------------------------------------------
    def run(self) -> LdirectordConfig:
        current: _VirtualDraft | None = None
        last_section_end: SourceLine | None = None
        for line in self.lines:
            text = line.text
            if current is not None:
                if re.match(r"^\s*#", text):
                    continue
                body = re.sub(r"#.*", "", text).replace("\t", "    ")
                m = re.match(r"^ {4,}(\S.*)$", body)
                if m:
                    self._virtual_directive(current, line, m.group(1).rstrip(),
                                            len(body) - len(body.lstrip(" ")), text)
                    continue
                current = None
                last_section_end = line
            if not text.strip() or re.match(r"^\s*#", text):
                continue
            if text[0] in " \t":
                stripped = text.strip()
                head = _KEY_RE.match(stripped)
                message = "indented line outside a virtual service"
                if head and head.group(1) in KEYWORDS and \
                        KEYWORDS[head.group(1)].field == _V and last_section_end is not None:
                    message += (f" (the blank or unindented line {last_section_end.number} "
                                "ended the virtual section: ldirectord allows no blank lines "
                                "inside a section)")
                self.diags.error(line, len(text) - len(text.lstrip()) + 1, message)
                continue
            vm = re.match(r"^virtual(6)?\s*=\s*(.*)$", text)
            if vm:
                current = _VirtualDraft(6 if vm.group(1) else 4, line)
                self._start_virtual(current, vm.group(2).rstrip(), line,
                                    text.index(vm.group(2)) + 1 if vm.group(2) else len(text))
                continue
            self._global_directive(line, text.rstrip())
        return self._finish()

    # -- helpers -------------------------------------------------------------
    def _warn(self, line: SourceLine, column: int) -> Callable[[str], None]:
        return lambda message: self.diags.warning(line, column, message)

    def _unknown(self, line: SourceLine, column: int, name: str, where: str) -> None:
        message = f"unknown directive '{name}'{where}"
        close = difflib.get_close_matches(name, list(KEYWORDS), n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        self.diags.error(line, column, message)

    # -- globals ---------------------------------------------------------------
    def _global_directive(self, line: SourceLine, text: str) -> None:
        if re.fullmatch(r"supervised\s*", text):
            self.diags.warning(line, 1, "please write supervised=yes (a bare 'supervised' is "
                               "read as yes)")
            self.globals["supervised"] = True
            return
        m = _KEY_RE.match(text)
        if not m:
            word = _WORD_RE.match(text)
            self.diags.error(line, 1, f"unknown line {text.strip()!r}: expected name=value"
                             if not word or word.group(1) not in KEYWORDS else
                             f"{word.group(1)} needs '=' and a value")
            return
        name = m.group(1) + (m.group(2) or "")
        value = m.group(3)
        column = text.index("=") + 2
        kw = KEYWORDS.get(name)
        if kw is None:
            self._unknown(line, 1, name, "")
            return
        if kw.field == _V:
            self.diags.error(line, 1, f"{name} belongs inside a virtual service (indent it "
                             "under a virtual= line)")
            return
        try:
            self._set_global(name, value, line, column)
        except _Problem as problem:
            self.diags.error(line, column + problem.column_offset, str(problem))

    def _set_global(self, name: str, value: str, line: SourceLine, column: int) -> None:
        g = self.globals
        warn = self._warn(line, column)
        if name in ("connecttimeout", "timeout"):
            raise _Problem(f"{name} directive {KEYWORDS[name].reason}")
        if name == "checktimeout":
            g[name] = _positive_int(value, "check timeout value", warn=warn)
        elif name == "negotiatetimeout":
            g[name] = _positive_int(value, "negotiate timeout value", warn=warn)
        elif name == "checkinterval":
            g[name] = _positive_int(value, "check interval value", warn=warn)
        elif name == "checkcount":
            g[name] = _positive_int(value, "check count value", warn=warn)
            warn("checkcount is deprecated and slated for removal: see failurecount")
        elif name == "failurecount":
            g[name] = _positive_int(value, "failure count value", warn=warn)
        elif name in ("fallback", "fallback6"):
            family = 6 if name == "fallback6" else 4
            _parse_fallback(value, family, "tcp", self.resolver, None, line.at(column))
            self.global_fallback[family] = (value, line, column)
        elif name == "fallbackcommand":
            if not value:
                raise _Problem("invalid fallback command")
            g[name] = _maybe_quoted(value)
        elif name in ("autoreload", "fork", "quiescent", "readdquiescent", "cleanstop",
                      "supervised"):
            g[name] = _yes_no(value, name)
        elif name == "callback":
            g[name] = _quoted(value, name)
        elif name == "logfile":
            text = _quoted(value, name)
            if not text.startswith("/") and text not in SYSLOG_FACILITIES:
                raise _Problem(f'logfile "{text}" is neither an absolute path nor a syslog '
                               f"facility ({', '.join(SYSLOG_FACILITIES)})")
            g[name] = text
        elif name == "execute":
            if not value:
                raise _Problem("execute needs a configuration file name")
            g.setdefault("execute", []).append(value)
        elif name == "emailalert":
            g[name] = _email(value)
        elif name == "emailalertfreq":
            if not re.match(r"^\d+", value):
                raise _Problem("invalid email alert frequency")
            g[name] = int(re.match(r"^\d+", value).group())  # type: ignore[union-attr]
        elif name == "emailalertstatus":
            g[name] = _email_status(value)
        elif name == "emailalertfrom":
            if not value:
                raise _Problem("no email from address specified")
            g[name] = value
        elif name == "smtp":
            g[name] = _smtp(value)
        elif name == "maintenancedir":
            if not value:
                raise _Problem("maintenance directory not specified")
            g[name] = value
        else:  # pragma: no cover - table and handlers agree
            raise _Problem(f"{name} is not a global directive")

    # -- virtual sections ------------------------------------------------------
    def _start_virtual(self, draft: _VirtualDraft, value: str, line: SourceLine,
                       column: int) -> None:
        family = draft.family
        v4 = re.match(r"^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z_-]+)", value)
        named = re.match(r"^([0-9A-Za-z._+-]+):([0-9A-Za-z_-]+)", value)
        fwm = re.match(r"^(\d{1,10})(?!\d)", value)
        v6 = re.match(r"^\[([0-9A-Fa-f:]+)\]:([0-9A-Za-z_-]+)", value)
        match = None
        if v4 and family == 4:
            match = v4
            draft.values["address"], draft.values["port_text"] = v4.group(1), v4.group(2)
        elif named:
            match = named
            draft.values["address"], draft.values["port_text"] = named.group(1), named.group(2)
        elif fwm:
            match = fwm
            draft.values["fwmark"] = int(fwm.group(1))
        elif v6 and family == 4:
            self.diags.error(line, column, 'cannot specify an IPv6 address here: use '
                             '"virtual6" instead')
            draft.values["invalid"] = True
            return
        elif v6:
            match = v6
            try:
                ipaddress.IPv6Address(v6.group(1))
            except ValueError:
                self.diags.error(line, column, "invalid IPv6 address for virtual server")
                draft.values["invalid"] = True
                return
            draft.values["address"], draft.values["port_text"] = v6.group(1), v6.group(2)
        else:
            self.diags.error(line, column, "invalid address for virtual server: expected "
                             "IP:PORT, [IPv6]:PORT, HOST:SERVICE or a firewall mark")
            draft.values["invalid"] = True
            return
        leftover = value[match.end():].strip()
        if leftover and not leftover.startswith("#"):
            self.diags.warning(line, column + match.end(),
                               f"{leftover!r} after the virtual service is ignored "
                               "(as ldirectord does)")
        if "address" in draft.values:
            try:
                _check_host(draft.values["address"], family, "virtual server")
            except _Problem as problem:
                self.diags.error(line, column, str(problem))
                draft.values["invalid"] = True
                return
        self.drafts.append(draft)

    def _virtual_directive(self, draft: _VirtualDraft, line: SourceLine, rcmd: str,
                           indent: int, raw: str) -> None:
        column = _raw_column(raw, indent) + 1
        m = _KEY_RE.match(rcmd)
        if not m:
            word = _WORD_RE.match(rcmd)
            if word and word.group(1) in KEYWORDS:
                self.diags.error(line, column, f"{word.group(1)} needs '=' and a value")
            else:
                self.diags.error(line, column, f"unknown line {rcmd!r}: expected name=value")
            return
        name = m.group(1) + (m.group(2) or "")
        value = m.group(3)
        vcol = column + rcmd.index("=") + 1
        while vcol - 1 < len(raw) and raw[vcol - 1] in " \t":
            vcol += 1
        kw = KEYWORDS.get(name)
        if kw is None:
            self._unknown(line, column, name, " in a virtual service")
            return
        if name in _GLOBAL_ONLY:
            self.diags.error(line, column, f"{name} is a global directive: write it at the "
                             "start of a line, outside virtual services")
            return
        if kw.status is KeywordStatus.IGNORED:
            self.diags.note(line, column, f"{name} is accepted and ignored: {kw.reason}")
        try:
            self._set_virtual(draft, name, value, line, vcol)
        except _Problem as problem:
            self.diags.error(line, vcol + problem.column_offset, str(problem))

    def _set_virtual(self, d: _VirtualDraft, name: str, value: str, line: SourceLine,
                     column: int) -> None:
        handler = _VIRTUAL_HANDLERS.get(name)
        if handler is None:  # pragma: no cover - every virtual keyword has a handler
            raise _Problem(f"{name} is not allowed in a virtual service")
        handler(_Setting(d, name, value, line, column, self.resolver, self._warn(line, column)))

    # -- end -----------------------------------------------------------------
    def _finish(self) -> LdirectordConfig:
        g = self.globals
        fallbacks: dict[int, Fallback] = {}
        for family, (value, line, column) in self.global_fallback.items():
            with contextlib.suppress(_Problem):  # already reported when read
                fallbacks[family] = _parse_fallback(value, family, "tcp", self.resolver, None,
                                                    line.at(column))
        virtuals: list[VirtualService] = []
        seen: dict[str, int] = {}
        for draft in self.drafts:
            try:
                vs = self._build_virtual(draft, g, fallbacks)
            except _Problem as problem:
                self.diags.error(draft.line, 1, str(problem))
                continue
            if vs is None:
                continue
            if vs.ident in seen:
                self.diags.error(draft.line, 1, f"duplicate virtual server {vs.ident} (also "
                                 f"line {seen[vs.ident]})")
                continue
            seen[vs.ident] = draft.line.number
            virtuals.append(vs)
        if not g.get("fork", False):
            for draft in self.drafts:
                if "checkinterval" in draft.values:
                    self.diags.warning(draft.line, 1, "checkinterval in a virtual service is "
                                       "ignored when fork=no")
        return LdirectordConfig(
            virtuals=tuple(virtuals),
            checktimeout=g.get("checktimeout"),
            negotiatetimeout=g.get("negotiatetimeout"),
            checkinterval=g.get("checkinterval", CHECK_INTERVAL),
            checkcount=g.get("checkcount", 1),
            failurecount=g.get("failurecount", 1),
            autoreload=g.get("autoreload", False),
            callback=g.get("callback"),
            fallback=fallbacks.get(4),
            fallback6=fallbacks.get(6),
            fallbackcommand=g.get("fallbackcommand"),
            logfile=g.get("logfile", "/var/log/ldirectord.log"),
            emailalert=g.get("emailalert"),
            emailalertfrom=g.get("emailalertfrom"),
            emailalertfreq=g.get("emailalertfreq", 0),
            emailalertstatus=g.get("emailalertstatus", frozenset(EMAIL_STATES)),
            smtp=g.get("smtp"),
            execute=tuple(g.get("execute", ())),
            supervised=g.get("supervised", False),
            fork=g.get("fork", False),
            quiescent=g.get("quiescent", False),
            readdquiescent=g.get("readdquiescent", False),
            cleanstop=g.get("cleanstop", True),
            maintenancedir=g.get("maintenancedir"),
            path=self.path,
        )

    def _build_virtual(self, d: _VirtualDraft, g: dict[str, Any],
                       fallbacks: dict[int, Fallback]) -> VirtualService | None:
        v = d.values
        if v.get("invalid"):
            return None
        fwmark = v.get("fwmark")
        address = v.get("address")
        port: int | None = None
        if fwmark is not None:
            protocol = v.get("protocol", "fwm")
            service = v.get("service", "none")
        else:
            port_text = v["port_text"]
            protocol = v.get("protocol") or ("udp" if port_text in ("53", "domain") else "tcp")
            port = self.resolver.service_port(port_text, protocol)
            if port is None:
                raise _Problem(f"invalid port {port_text!r} for virtual service (unknown "
                               "service name)")
            service = v.get("service") or service_for_port(port)
        reals: list[RealServer] = []
        for value, line, column in d.reals:
            try:
                reals.append(_parse_real(value, d.family, self.resolver, line.at(column)))
            except _Problem:
                continue  # reported when the line was read
        keys = [(r.address, r.last, r.port) for r in reals]
        for i, key in enumerate(keys):
            if key in keys[:i] and reals[i].location is not None:
                self.diags.warning(self.lines[reals[i].location.line - 1],
                                   reals[i].location.column,
                                   f"real server {key[0]} listed twice in this virtual service")
        fallback: Fallback | None = None
        if d.fallback is not None:
            value, line, column = d.fallback
            try:
                fallback = _parse_fallback(value, d.family, protocol if protocol != "fwm"
                                           else None, self.resolver, port, line.at(column))
            except _Problem as problem:
                self.diags.error(line, column, str(problem))
        elif d.family in fallbacks:
            glob = fallbacks[d.family]
            if glob.port is None:
                glob = replace(glob, port=port)
            fallback = glob
        login = v.get("login", "")
        if d.service_explicit and service == "ftp" and not login:
            login = "anonymous"
        checktimeout = (v.get("checktimeout") or v.get("negotiatetimeout")
                        or g.get("checktimeout") or g.get("negotiatetimeout") or CHECK_TIMEOUT)
        negotiatetimeout = (v.get("negotiatetimeout") or v.get("checktimeout")
                            or g.get("negotiatetimeout") or g.get("checktimeout")
                            or NEGOTIATE_TIMEOUT)
        checkinterval = g.get("checkinterval", CHECK_INTERVAL)
        if g.get("fork", False) and "checkinterval" in v:
            checkinterval = v["checkinterval"]
        if v.get("ops") and protocol != "udp":
            self.diags.warning(d.line, 1, "ops=yes only applies to UDP services; ignored")
        return VirtualService(
            family=d.family,
            protocol=protocol,
            address=address,
            port=port,
            fwmark=fwmark,
            reals=tuple(reals),
            fallback=fallback,
            checktype=v.get("checktype", CheckType.NEGOTIATE),
            connect_count=v.get("connect_count", 0),
            service=service,
            checkcommand=v.get("checkcommand", "/bin/true"),
            checkport=v.get("checkport"),
            request=v.get("request", "/"),
            receive=v.get("receive", ""),
            httpmethod=v.get("httpmethod", "GET"),
            virtualhost=v.get("virtualhost"),
            login=login,
            passwd=v.get("passwd", ""),
            database=v.get("database", ""),
            secret=v.get("secret", ""),
            scheduler=v.get("scheduler", "wrr"),
            persistent=v.get("persistent"),
            netmask=v.get("netmask"),
            schedflags=v.get("schedflags"),
            ops=v.get("ops", False) and protocol == "udp",
            checktimeout=checktimeout,
            negotiatetimeout=negotiatetimeout,
            checkcount=v.get("checkcount", g.get("checkcount", 1)),
            failurecount=v.get("failurecount", g.get("failurecount", 1)),
            checkinterval=checkinterval,
            quiescent=v.get("quiescent", g.get("quiescent", False)),
            cleanstop=v.get("cleanstop", g.get("cleanstop", True)),
            fallbackcommand=v.get("fallbackcommand", g.get("fallbackcommand")),
            emailalert=v.get("emailalert", g.get("emailalert")),
            emailalertfreq=v.get("emailalertfreq", g.get("emailalertfreq", 0)),
            emailalertstatus=v.get("emailalertstatus",
                                   g.get("emailalertstatus", frozenset(EMAIL_STATES))),
            smtp=v.get("smtp", g.get("smtp")),
            monitorfile=v.get("monitorfile"),
            servicename=v.get("servicename"),
            comment=v.get("comment"),
            load=v.get("load"),
            location=d.line.at(1),
        )


def _raw_column(raw: str, expanded_indent: int) -> int:
    """Map an indent measured with tabs as 4 spaces back to a 0-based column in `raw`."""
    width = 0
    for i, ch in enumerate(raw):
        if width >= expanded_indent:
            return i
        width += 4 if ch == "\t" else 1
    return len(raw)


def analyze(text: str, path: str = DEFAULT_NAME,
            resolver: Resolver | None = None) -> Parsed[LdirectordConfig]:
    """Parse ldirectord.cf, collecting every problem; never raises for bad input.

    `resolver` answers service-name lookups (`virtual=...:http`); the system's
    by default. Host names are not resolved here (see `expand_reals`).
    """
    reader = _Reader(text, path, resolver or SystemResolver())
    config = reader.run()
    return Parsed(config, reader.diags.freeze())


def parse(text: str, path: str = DEFAULT_NAME, resolver: Resolver | None = None,
          ) -> LdirectordConfig:
    """Parse ldirectord.cf or raise `ConfigErrors` naming every mistake."""
    return analyze(text, path, resolver).unwrap()


# ---------------------------------------------------------------------------
# Resolution


class ResolutionError(ValueError):
    """A host name in ldirectord.cf that does not resolve (ldirectord refuses to start)."""


def _one_address(host: str, family: int, resolver: Resolver, what: str) -> str:
    addresses = resolver.addresses(host, family)
    if not addresses:
        raise ResolutionError(f"{what} {host} does not resolve to an IPv{family} address")
    return addresses[0]


def resolve_virtual(service: VirtualService, resolver: Resolver) -> str | None:
    """The virtual's address as an IP (host names resolved; None for fwmark services)."""
    if service.address is None:
        return None
    return _one_address(service.address, service.family, resolver, "virtual server")


def expand_reals(service: VirtualService, resolver: Resolver) -> tuple[RealServer, ...]:
    """The real servers with host names resolved and IPv4 ranges expanded, one per address."""
    out: list[RealServer] = []
    for real in service.reals:
        first = _one_address(real.address, real.family, resolver, "real server")
        if real.last is None:
            out.append(replace(real, address=first))
            continue
        last = _one_address(real.last, real.family, resolver, "real server")
        a, b = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
        if a > b:
            raise ResolutionError(f"invalid range {real.address}->{real.last}: {first} is "
                                  f"after {last}")
        if b - a > 65535:
            raise ResolutionError(f"range {real.address}->{real.last} is too large")
        for n in range(a, b + 1):
            out.append(replace(real, address=str(ipaddress.IPv4Address(n)), last=None))
    return tuple(out)


def find_config(name: str, ha_dir: str = "/etc/ha.d") -> str | None:
    """Where ldirectord finds a config named on its command line (or haresources).

    ``/etc/ha.d/NAME``, then ``/etc/ha.d/conf/NAME``, then NAME as given.
    """
    for candidate in (os.path.join(ha_dir, name), os.path.join(ha_dir, "conf", name), name):
        if os.path.isfile(candidate):
            return candidate
    return None


# ---------------------------------------------------------------------------
# Rendering


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _host(address: str, family: int) -> str:
    return f"[{address}]" if family == 6 and ":" in address else address


def _render_fallback(fb: Fallback) -> str:
    text = _host(fb.address, fb.family)
    if fb.port is not None:
        text += f":{fb.port}"
    return f"{text} {fb.forwarding}"


def _render_real(real: RealServer) -> str:
    text = _host(real.address, real.family)
    if real.last is not None:
        text += "->" + _host(real.last, real.family)
    if real.port:
        text += f":{real.port}"
    text += f" {real.forwarding} {real.weight}"
    if real.request is not None and real.receive is not None:
        text += f' "{real.request}", "{real.receive}"'
    if real.lower is not None:
        text += f" l:{real.lower}"
    if real.upper is not None:
        text += f" u:{real.upper}"
    return text


_DEFAULTS = {f.name: f.default for f in fields(LdirectordConfig)}


def render(config: LdirectordConfig) -> str:
    """An ldirectord.cf text that parses back to an equal model.

    Every virtual service is written with its effective values, so the result
    does not depend on global defaults.
    """
    out = ["# ldirectord.cf written by vigil"]
    for name in ("checktimeout", "negotiatetimeout"):
        value = getattr(config, name)
        if value is not None:
            out.append(f"{name}={value}")
    for name in ("checkinterval", "checkcount", "failurecount", "emailalertfreq"):
        value = getattr(config, name)
        if value != _DEFAULTS[name]:
            out.append(f"{name}={value}")
    for name in ("autoreload", "supervised", "fork", "quiescent", "readdquiescent", "cleanstop"):
        value = getattr(config, name)
        if value != _DEFAULTS[name]:
            out.append(f"{name}={_yn(value)}")
    if config.callback is not None:
        out.append(f'callback="{config.callback}"')
    if config.logfile != _DEFAULTS["logfile"]:
        out.append(f'logfile="{config.logfile}"')
    for name in ("fallbackcommand", "emailalert", "emailalertfrom", "smtp", "maintenancedir"):
        value = getattr(config, name)
        if value is not None:
            out.append(f"{name}={value}")
    if config.emailalertstatus != frozenset(EMAIL_STATES):
        out.append("emailalertstatus=" + (",".join(sorted(config.emailalertstatus)) or "none"))
    for name in ("fallback", "fallback6"):
        fb = getattr(config, name)
        if fb is not None:
            out.append(f"{name}={_render_fallback(fb)}")
    for item in config.execute:
        out.append(f"execute={item}")
    for vs in config.virtuals:
        out.append("")
        out.extend(_render_virtual(vs, config))
    return "\n".join(out) + "\n"


def _render_virtual(vs: VirtualService, config: LdirectordConfig) -> list[str]:
    suffix = "6" if vs.family == 6 else ""
    if vs.fwmark is not None:
        head = f"virtual{suffix}={vs.fwmark}"
    else:
        head = f"virtual{suffix}={_host(vs.address or '', vs.family)}:{vs.port}"
    lines = [head]

    def put(text: str) -> None:
        lines.append("\t" + text)

    for real in vs.reals:
        put(f"real{suffix}={_render_real(real)}")
    put(f"protocol={vs.protocol}")
    put(f"service={vs.service}")
    if vs.checktype is CheckType.COMBINED:
        put(f"checktype={vs.connect_count}")
    else:
        put(f"checktype={vs.checktype}")
    put(f"scheduler={vs.scheduler}")
    if vs.fallback is not None:
        put(f"fallback{suffix}={_render_fallback(vs.fallback)}")
    put(f"checkcommand={vs.checkcommand}")
    if vs.checkport is not None:
        put(f"checkport={vs.checkport}")
    put(f'request="{vs.request}"')
    if vs.receive:
        put(f'receive="{vs.receive}"')
    put(f"httpmethod={vs.httpmethod}")
    for name in ("login", "passwd", "database", "secret", "load"):
        value = getattr(vs, name)
        if value:
            put(f'{name}="{value}"')
    for name in ("virtualhost", "persistent", "netmask", "schedflags", "fallbackcommand",
                 "emailalert", "smtp", "monitorfile", "servicename", "comment"):
        value = getattr(vs, name)
        if value is not None:
            put(f"{name}={value}")
    if vs.ops:
        put("ops=yes")
    put(f"checktimeout={vs.checktimeout}")
    put(f"negotiatetimeout={vs.negotiatetimeout}")
    put(f"checkcount={vs.checkcount}")
    put(f"failurecount={vs.failurecount}")
    if config.fork and vs.checkinterval != config.checkinterval:
        put(f"checkinterval={vs.checkinterval}")
    put(f"quiescent={_yn(vs.quiescent)}")
    put(f"cleanstop={_yn(vs.cleanstop)}")
    put(f"emailalertfreq={vs.emailalertfreq}")
    put("emailalertstatus=" + (",".join(sorted(vs.emailalertstatus)) or "none"))
    return lines



# -- virtual-service directives: one handler each ------------------------------------------


@dataclass
class _Setting:
    """One `name=value` line of a virtual section, as its handler sees it."""

    draft: _VirtualDraft
    name: str
    value: str
    line: SourceLine
    column: int
    resolver: Resolver
    warn: Callable[[str], None]

    @property
    def values(self) -> dict[str, Any]:
        return self.draft.values

    def store(self, value: object) -> None:
        self.draft.values[self.name] = value


def _same_family(s: _Setting, base: str) -> int:
    family = 6 if s.name.endswith("6") else 4
    if family != s.draft.family:
        raise _Problem(f'cannot specify "{s.name}" here: use '
                       f'"{base}{"" if s.draft.family == 4 else "6"}" instead')
    return family


def _real(s: _Setting) -> None:
    family = _same_family(s, "real")
    _parse_real(s.value, family, s.resolver, s.line.at(s.column))
    s.draft.reals.append((s.value, s.line, s.column))


def _fallback(s: _Setting) -> None:
    _same_family(s, "fallback")
    s.draft.fallback = (s.value, s.line, s.column)


def _quoted_text(s: _Setting) -> None:
    text = _quoted(s.value, s.name)
    if s.name == "request" and not text.startswith("/"):
        text = "/" + text
    if s.name == "receive":
        _check_pattern(text)
    s.store(text)


def _load(s: _Setting) -> None:
    wm = re.search(r"\w+", _quoted(s.value, s.name))
    if not wm:
        raise _Problem("invalid string for load testing")
    s.store(wm.group())


def _checktype(s: _Setting) -> None:
    digits = re.search(r"\d+", s.value)
    word = re.match(r"^([\w-]+)", s.value)
    if digits:
        s.values["checktype"] = CheckType.COMBINED
        s.values["connect_count"] = _number(digits.group())
    elif word and word.group(1) in ("connect", "negotiate", "ping", "off", "on",
                                    "external", "external-perl"):
        s.values["checktype"] = CheckType(word.group(1))
        s.values["connect_count"] = 0  # only meaningful for checktype=N
    else:
        raise _Problem('checktype must be "connect", "negotiate", "on", "off", "ping", '
                       '"external", "external-perl" or a positive number')


def _command(s: _Setting) -> None:
    text = _maybe_quoted(s.value)
    if not text:
        raise _Problem(f"invalid {s.name}")
    s.store(text)


_COUNT_LABELS = {"checktimeout": "check timeout", "negotiatetimeout": "negotiate timeout",
                 "failurecount": "failure count", "checkinterval": "checkinterval",
                 "checkcount": "check count"}


def _count(s: _Setting) -> None:
    s.store(_positive_int(s.value, _COUNT_LABELS[s.name], warn=s.warn))
    if s.name == "checkcount":
        s.warn("checkcount is deprecated and slated for removal: see failurecount")


def _connecttimeout(s: _Setting) -> None:
    raise _Problem("connecttimeout directive deprecated in favour of negotiatetimeout")


def _checkport(s: _Setting) -> None:
    port = _positive_int(s.value, "port", allow_zero=True, warn=s.warn)
    if not 0 < port < 65536:
        raise _Problem("checkport must be in range 1..65535")
    s.store(port)


def _scheduler(s: _Setting) -> None:
    sm = re.search(r"[a-z]+", s.value)
    if not sm:
        raise _Problem("invalid scheduler, should be only lowercase letters (a-z)")
    s.store(sm.group())


def _persistent(s: _Setting) -> None:
    s.store(_positive_int(s.value, "persistent timeout", allow_zero=True, warn=s.warn))


def _schedflags(s: _Setting) -> None:
    sm = re.search(r"\S+", s.value)
    if not sm:
        raise _Problem("invalid sched-flags")
    s.store(sm.group())


def _netmask(s: _Setting) -> None:
    if s.draft.family == 6:
        if not re.fullmatch(r"\d+", s.value) or not 1 <= int(s.value) <= 128:
            raise _Problem("invalid netmask: a prefix length between 1 and 128 is required")
    elif not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", s.value):
        raise _Problem("invalid netmask: dotted quad notation is required")
    s.store(s.value)


def _protocol(s: _Setting) -> None:
    pm = re.search(r"\w+", s.value)
    if not pm:
        raise _Problem("invalid protocol")
    word = pm.group()
    if "fwmark" in s.values:
        if word != "fwm":
            raise _Problem("protocol must be fwm if the virtual service is a fwmark "
                           "(a number)")
    elif word not in ("tcp", "udp"):
        raise _Problem("protocol must be tcp or udp if the virtual service is an "
                       "address and port")
    s.store(word)


def _yes_no_setting(s: _Setting) -> None:
    s.store(_yes_no(s.value, s.name))


def _service(s: _Setting) -> None:
    sm = re.search(r"\w+", s.value)
    if not sm or sm.group() not in SERVICES:
        raise _Problem("service must be " + ", ".join(sorted(SERVICES)))
    s.store(sm.group())
    s.draft.service_explicit = True


def _httpmethod(s: _Setting) -> None:
    hm = re.search(r"\w+", s.value)
    if not hm or hm.group().upper() not in ("GET", "HEAD"):
        raise _Problem("httpmethod must be GET or HEAD")
    s.store(hm.group().upper())


def _virtualhost(s: _Setting) -> None:
    vm = re.match(r'^"?([^"]*)"?', s.value)
    s.store(vm.group(1) if vm else s.value)


def _emailalert(s: _Setting) -> None:
    s.store(_email(s.value))


def _emailalertfreq(s: _Setting) -> None:
    em = re.match(r"^\d+", s.value)
    if not em:
        raise _Problem("invalid email alert frequency")
    s.store(int(em.group()))


def _emailalertstatus(s: _Setting) -> None:
    s.store(_email_status(s.value))


def _smtp_setting(s: _Setting) -> None:
    s.store(_smtp(s.value))


def _as_written(s: _Setting) -> None:
    s.store(s.value)


#: how each directive of a virtual section is read (ldirectord's checks, in its words)
_VIRTUAL_HANDLERS: dict[str, Callable[[_Setting], None]] = {
    "real": _real, "real6": _real, "fallback": _fallback, "fallback6": _fallback,
    **dict.fromkeys(("request", "receive", "login", "passwd", "database", "secret"),
                    _quoted_text),
    "load": _load, "checktype": _checktype,
    **dict.fromkeys(("checkcommand", "fallbackcommand", "monitorfile"), _command),
    **dict.fromkeys(_COUNT_LABELS, _count),
    "connecttimeout": _connecttimeout, "checkport": _checkport, "scheduler": _scheduler,
    "persistent": _persistent, "schedflags": _schedflags, "netmask": _netmask,
    "protocol": _protocol, "ops": _yes_no_setting, "quiescent": _yes_no_setting,
    "cleanstop": _yes_no_setting, "service": _service, "httpmethod": _httpmethod,
    "virtualhost": _virtualhost, "emailalert": _emailalert,
    "emailalertfreq": _emailalertfreq, "emailalertstatus": _emailalertstatus,
    "smtp": _smtp_setting, "servicename": _as_written, "comment": _as_written,
}

__all__ = [
    "DEFAULT_NAME", "EMAIL_STATES", "KEYWORDS", "SERVICES", "CheckType", "Fallback",
    "Forwarding", "LdirectordConfig", "RealServer", "ResolutionError", "VirtualService",
    "analyze", "expand_reals", "find_config", "parse", "render", "resolve_virtual",
    "service_for_port",
]
