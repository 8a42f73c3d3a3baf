"""A minimal ldirectord.cf reader, until the project's config parser lands.

It reads the directives ldirectord documents (global ones, `virtual=` /
`virtual6=` sections indented below them, `real=` with ranges, weights and
per-real request/receive) straight into the director's `DirectorConfig`, with
ldirectord's defaults and file:line errors. `adapter.load_config` prefers the
full parser (`vigil.config.ldirectord`) when it is there.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
from dataclasses import dataclass, field
from pathlib import Path

from vigil.director.settings import (
    CHECKTYPES,
    EMAIL_STATUSES,
    SERVICE_BY_PORT,
    CheckSpec,
    DirectorConfig,
    RealSpec,
    ServiceConfig,
)
from vigil.director.table import Forward, Protocol, RealServer, ServiceKey, VirtualService
from vigil.errors import ConfigError, Location

GLOBAL_ONLY = {"autoreload", "callback", "logfile", "execute", "supervised", "fork",
               "readdquiescent", "maintenancedir", "emailalertfrom"}
BOTH = {"checktimeout", "negotiatetimeout", "checkinterval", "checkcount", "failurecount",
        "fallback", "fallback6", "fallbackcommand", "quiescent", "cleanstop", "emailalert",
        "emailalertfreq", "emailalertstatus", "smtp"}
VIRTUAL_ONLY = {"real", "real6", "checktype", "service", "checkcommand", "checkport", "request",
                "receive", "httpmethod", "virtualhost", "login", "passwd", "database", "secret",
                "scheduler", "persistent", "netmask", "schedflags", "protocol", "ops",
                "monitorfile", "servicename", "comment", "load"}
REJECTED = {
    "connecttimeout": "connecttimeout is deprecated in favour of negotiatetimeout",
    "timeout": "timeout is deprecated; use checktimeout or negotiatetimeout",
}


@dataclass
class _Section:
    line: int
    key: ServiceKey
    values: dict[str, tuple[str, int]] = field(default_factory=dict)
    reals: list[tuple[str, int]] = field(default_factory=list)
    ipv6: bool = False


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _yes(value: str, where: Location) -> bool:
    if value.lower() in ("yes", "on", "true", "1"):
        return True
    if value.lower() in ("no", "off", "false", "0"):
        return False
    raise ConfigError(where, f"expected yes or no, got {value!r}")


def _number(value: str, where: Location, kind=float, minimum: float | None = None):
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(where, f"expected a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(where, f"{value} is below the minimum {minimum:g}")
    return number


def _port(text: str, protocol: str, where: Location) -> int:
    if text.isdigit():
        port = int(text)
        if not 0 <= port <= 65535:
            raise ConfigError(where, f"port {port} out of range")
        return port
    try:
        return socket.getservbyname(text, "udp" if protocol == "udp" else "tcp")
    except OSError:
        raise ConfigError(where, f"unknown service name {text!r}") from None


def _address(text: str, where: Location, ipv6: bool = False) -> str:
    text = text.strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        return socket.getaddrinfo(text, None, family)[0][4][0]
    except OSError:
        raise ConfigError(where, f"cannot resolve {text!r}") from None


def _split_endpoint(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        return address, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        address, port = text.split(":")
        return address, port
    return text, None


def read_config(path: str | Path) -> DirectorConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(Location(str(path)), f"cannot read: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "ldirectord.cf") -> DirectorConfig:
    globals_: dict[str, tuple[str, int]] = {}
    sections: list[_Section] = []
    current: _Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = Location(source, number, len(line) - len(line.lstrip()) + 1)
        indented = line[0] in " \t"
        if "=" not in stripped:
            raise ConfigError(where, f"expected directive=value, got {stripped!r}")
        name, _, value = stripped.partition("=")
        name = name.strip().lower()
        value = value.strip()
        value = _unquote(value) if value.startswith('"') else value.split("#", 1)[0].strip()
        if name in REJECTED:
            raise ConfigError(where, REJECTED[name])
        if not indented:
            if name in ("virtual", "virtual6"):
                current = _Section(number, _virtual_key(value, name == "virtual6", where),
                                   ipv6=name == "virtual6")
                sections.append(current)
                continue
            current = None
            if name not in GLOBAL_ONLY | BOTH:
                raise ConfigError(where, f"unknown or misplaced global directive {name!r}")
            globals_[name] = (value, number)
            continue
        if current is None:
            raise ConfigError(where, f"{name} is indented but no virtual= section is open")
        if name not in VIRTUAL_ONLY | BOTH:
            raise ConfigError(where, f"unknown directive {name!r} in a virtual section")
        if name in ("real", "real6"):
            current.reals.append((value, number))
        else:
            current.values[name] = (value, number)
    return _build(globals_, sections, source)


def _virtual_key(value: str, ipv6: bool, where: Location) -> ServiceKey:
    if value.isdigit():
        return ServiceKey.fwm(int(value), family=6 if ipv6 else 4)
    address, port = _split_endpoint(value)
    if port is None:
        raise ConfigError(where, f"virtual={value}: expected address:port or a fwmark number")
    return ServiceKey(Protocol.TCP, _address(address, where, ipv6), _port(port, "tcp", where))


def _build(globals_: dict, sections: list[_Section], source: str) -> DirectorConfig:
    def where(line: int) -> Location:
        return Location(source, line)

    def glob(name: str):
        return globals_.get(name)

    services = []
    for section in sections:
        values = dict(section.values)

        def get(name: str, values=values):
            return values.get(name) or glob(name)

        key = section.key
        protocol_value = values.get("protocol")
        if key.protocol is not Protocol.FWM:
            protocol = protocol_value[0].lower() if protocol_value else (
                "udp" if key.port == 53 else "tcp")
            if protocol not in ("tcp", "udp"):
                raise ConfigError(where(protocol_value[1]), f"protocol {protocol} needs fwmark")
            key = ServiceKey(Protocol(protocol), key.address, key.port)
        elif protocol_value and protocol_value[0].lower() != "fwm":
            raise ConfigError(where(protocol_value[1]), "a fwmark virtual needs protocol=fwm")
        services.append(_service(section, key, get, where))
    keys = [s.key for s in services]
    if len(set(keys)) != len(keys):
        raise ConfigError(Location(source), "a virtual service is defined twice")

    def flag(name: str, default: bool) -> bool:
        item = glob(name)
        return _yes(item[0], where(item[1])) if item else default

    maintenancedir = glob("maintenancedir")
    return DirectorConfig(
        services=tuple(services),
        source=source,
        autoreload=flag("autoreload", False),
        callback=glob("callback")[0] if glob("callback") else None,
        logfile=glob("logfile")[0] if glob("logfile") else "/var/log/ldirectord.log",
        maintenancedir=maintenancedir[0] if maintenancedir else None,
        readdquiescent=flag("readdquiescent", False),
        emailalertfrom=glob("emailalertfrom")[0] if glob("emailalertfrom") else None,
        supervised=flag("supervised", False),
    )


def _service(section: _Section, key: ServiceKey, get, where) -> ServiceConfig:
    def text(name: str, default=None):
        item = get(name)
        return item[0] if item else default

    def num(name: str, default, kind=float, minimum=None):
        item = get(name)
        return _number(item[0], where(item[1]), kind, minimum) if item else default

    def yes(name: str, default: bool) -> bool:
        item = get(name)
        return _yes(item[0], where(item[1])) if item else default

    checktimeout = num("checktimeout", None, float, 0.001)
    negotiatetimeout = num("negotiatetimeout", None, float, 0.001)
    checktype = text("checktype", "negotiate").lower()
    connects = 0
    if checktype.isdigit():
        connects, checktype = int(checktype), "combined"
    if checktype not in CHECKTYPES:
        item = get("checktype")
        raise ConfigError(where(item[1]), f"unknown checktype {checktype!r}")
    service_name = text("service")
    if service_name is None:
        service_name = SERVICE_BY_PORT.get(key.port, "none")
    request = text("request", "/")
    if request and not request.startswith("/") and "://" not in request:
        request = "/" + request
    check = CheckSpec(
        checktype=checktype,
        connects=connects,
        service=service_name.lower(),
        checkport=num("checkport", None, int, 1),
        request=request,
        receive=text("receive", ""),
        httpmethod=text("httpmethod", "GET").upper(),
        virtualhost=text("virtualhost"),
        login=text("login", ""),
        passwd=text("passwd", ""),
        database=text("database", ""),
        secret=text("secret", ""),
        checkcommand=text("checkcommand", "/bin/true"),
        checktimeout=checktimeout or negotiatetimeout or 5.0,
        negotiatetimeout=negotiatetimeout or checktimeout or 30.0,
        checkcount=num("checkcount", 1, int, 1),
    )
    reals = []
    for value, line in section.reals:
        reals.extend(_reals(value, key, where(line), section.ipv6))
    seen = set()
    for real in reals:
        if real.key in seen:
            raise ConfigError(where(section.line), f"real server {real.key} listed twice")
        seen.add(real.key)
    fallback_item = get("fallback6" if section.ipv6 else "fallback")
    fallback = None
    if fallback_item:
        fallback = _fallback(fallback_item[0], key, where(fallback_item[1]), section.ipv6)
    scheduler = text("scheduler", "wrr")
    if not re.fullmatch(r"[a-z]+", scheduler):
        raise ConfigError(where(get("scheduler")[1]), f"bad scheduler name {scheduler!r}")
    persistent = num("persistent", None, int, 1)
    statuses = text("emailalertstatus", "all").lower()
    status_set = (EMAIL_STATUSES if statuses == "all" else frozenset() if statuses == "none"
                  else frozenset(s.strip() for s in statuses.split(",")))
    emails = text("emailalert")
    return ServiceConfig(
        service=VirtualService(
            key, scheduler=scheduler, persistent=persistent, netmask=text("netmask"),
            sched_flags=tuple(f for f in text("schedflags", "").replace(",", " ").split() if f),
            ops=yes("ops", False)),
        reals=tuple(reals),
        check=check,
        checkinterval=num("checkinterval", 10.0, float, 0.001),
        failurecount=num("failurecount", 1, int, 1),
        quiescent=yes("quiescent", False),
        fallback=fallback,
        fallbackcommand=text("fallbackcommand"),
        cleanstop=yes("cleanstop", True),
        emailalert=tuple(a.strip() for a in emails.split(",") if a.strip()) if emails else (),
        emailalertfreq=num("emailalertfreq", 0.0, float, 0),
        emailalertstatus=status_set,
        smtp=text("smtp"),
        monitorfile=text("monitorfile"),
        servicename=text("servicename"),
        comment=text("comment"),
    )


_REAL = re.compile(r'^(\S+)\s+(gate|masq|ipip)(?:\s+(\d+))?(.*)$', re.IGNORECASE)


def _reals(value: str, virtual: ServiceKey, where: Location, ipv6: bool) -> list[RealSpec]:
    match = _REAL.match(value.strip())
    if match is None:
        raise ConfigError(where, f"real={value}: expected ADDR[:PORT] gate|masq|ipip [WEIGHT]")
    endpoint, forward, weight, rest = match.groups()
    request = receive = None
    lower = upper = 0
    words = shlex.split(rest.replace(",", " ")) if rest.strip() else []
    strings = [w for w in words if not re.fullmatch(r"[lu]:\d+", w)]
    for word in words:
        if word.startswith("l:"):
            lower = int(word[2:])
        elif word.startswith("u:"):
            upper = int(word[2:])
    if strings:
        if len(strings) != 2:
            raise ConfigError(where, "a real server's check override is \"REQUEST\", \"RECEIVE\"")
        request, receive = strings
        if not request.startswith("/") and "://" not in request:
            request = "/" + request
    address_text, port_text = _split_endpoint(endpoint)
    port = _port(port_text, virtual.protocol.value, where) if port_text else 0
    fwd = Forward(forward.lower())
    if virtual.protocol is not Protocol.FWM and fwd is not Forward.MASQ:
        port = virtual.port  # LVS: only NAT can change the port
    elif virtual.protocol is not Protocol.FWM and not port:
        port = virtual.port
    if "->" in address_text:
        if ipv6:
            raise ConfigError(where, "real6 ranges are not supported")
        first, last = (ipaddress.IPv4Address(_address(a, where)) for a in address_text.split("->"))
        if last < first:
            raise ConfigError(where, f"empty range {address_text}")
        addresses = [str(ipaddress.IPv4Address(i)) for i in range(int(first), int(last) + 1)]
    else:
        addresses = [_address(address_text, where, ipv6)]
    return [
        RealSpec(RealServer(a, port, weight=int(weight) if weight else 1, forward=fwd,
                            upper=upper, lower=lower), request, receive)
        for a in addresses
    ]


def _fallback(value: str, virtual: ServiceKey, where: Location, ipv6: bool) -> RealServer:
    parts = value.split()
    address_text, port_text = _split_endpoint(parts[0])
    forward = Forward(parts[1].lower()) if len(parts) > 1 else Forward.GATE
    port = _port(port_text, virtual.protocol.value, where) if port_text else virtual.port
    return RealServer(_address(address_text, where, ipv6), port, weight=1, forward=forward)


