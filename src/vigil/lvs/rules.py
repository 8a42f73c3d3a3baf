"""ipvsadm's rules as text: the lines `ipvsadm -S` writes and `ipvsadm -R` reads.

`save_lines` renders a table as `-A -t VIP:PORT -s wlc` / `-a -t ... -r RIP:PORT
-g -w 1` lines; `parse_rules` reads such lines (blank lines, `#` comments and a
leading `ipvsadm` word allowed, as ipvsadm -R allows the last) into commands,
each with its line number, so a restore can be checked whole before any of it
is applied. The same option set parses one `vigil lvs` command line.

Names (host names, service names like `http`) need lookups, which are I/O:
the caller passes them in, so this module stays pure.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from vigil.lvs.operations import (
    AddReal,
    AddService,
    DeleteReal,
    DeleteService,
    EditReal,
    EditService,
    Operation,
    OperationError,
    apply_operations,
)
from vigil.lvs.table import (
    Forward,
    Protocol,
    RealKey,
    RealServer,
    ServiceKey,
    Table,
    VirtualService,
    format_endpoint,
)

#: ipvsadm -b's names (sh-*/mh-* for those schedulers, flag-N for any other)
SCHED_FLAGS = frozenset({"sh-fallback", "sh-port", "mh-fallback", "mh-port",
                         "flag-1", "flag-2", "flag-3"})
#: the commands a rule (or a `vigil lvs` edit) may give, as argparse dests
COMMANDS = ("add_service", "edit_service", "delete_service", "add_server", "edit_server",
            "delete_server", "clear")
#: a rule line longer than this is refused (no ipvsadm rule comes near it)
MAX_LINE = 4096
#: a restore input longer than this is refused (it is read whole, checked whole)
MAX_INPUT = 16 << 20
#: IPVS's scheduler names are shorter than this (IP_VS_SCHEDNAME_MAXLEN)
SCHED_NAME_MAX = 16
#: persistence timeouts and firewall marks are 32-bit in IPVS
U32 = 2**32 - 1

#: (port name, "tcp"|"udp") -> port number, or None when unknown
PortLookup = Callable[[str, str], "int | None"]
#: (address, port, protocol) -> the text shown for it (numbers, or looked-up names)
Namer = Callable[[str, int, Protocol], str]


class RuleError(ValueError):
    """A rule that cannot be taken as written; `line` is 1-based, 0 for a command line."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class Clear:
    """ipvsadm -C: every virtual service goes."""


Command = Operation | Clear


@dataclass(frozen=True)
class Rule:
    line: int
    command: Command


def numeric_ports(name: str, protocol: str) -> int | None:
    """The lookup that knows no port names (the default: no I/O here)."""
    return None


# -- saving ----------------------------------------------------------------------------------
def numeric_name(address: str, port: int, protocol: Protocol) -> str:
    return format_endpoint(address, port)


def service_words(key: ServiceKey, name: Namer = numeric_name) -> str:
    """`-t 198.51.100.10:80`, `-u ...`, `-f 5`, `-f 5 -6`, as ipvsadm -S spells a service."""
    if key.protocol is Protocol.FWM:
        return f"-f {key.fwmark}" + (" -6" if key.family == 6 else "")
    flag = "-t" if key.protocol is Protocol.TCP else "-u"
    return f"{flag} {name(key.address, key.port, key.protocol)}"


def service_line(service: VirtualService, name: Namer = numeric_name) -> str:
    """`-A ... -s SCHED [-p T [-M MASK]] [-o] [-b FLAGS]`: ipvsadm's order, then -o and -b,
    which ipvsadm 1.31 leaves out (vigil writes them so that a restore loses nothing; -M
    too whenever a mask was given, where ipvsadm leaves out the full one)."""
    line = f"-A {service_words(service.key, name)} -s {service.scheduler}"
    if service.persistent is not None:
        line += f" -p {service.persistent}"
        if service.netmask is not None:
            line += f" -M {service.netmask}"
    if service.ops:
        line += " -o"
    if service.sched_flags:
        line += f" -b {','.join(service.sched_flags)}"
    return line


def real_line(key: ServiceKey, real: RealServer, name: Namer = numeric_name) -> str:
    """`-a ... -r RIP:PORT -g -w W`, then -x/-y when set (ipvsadm 1.31 leaves them out)."""
    where = name(real.address, real.port, key.protocol)
    line = f"-a {service_words(key, name)} -r {where} {real.forward.ipvsadm_flag} -w {real.weight}"
    if real.upper:
        line += f" -x {real.upper}"
    if real.lower:
        line += f" -y {real.lower}"
    return line


def save_lines(services: Iterable[VirtualService], name: Namer = numeric_name) -> list[str]:
    """The services as ipvsadm -S writes them, in the order given: each service, then its
    real servers in ipvsadm's order (address and port as numbers)."""
    lines = []
    for service in services:
        lines.append(service_line(service, name))
        reals = sorted(service.reals, key=lambda r: real_order(r.address, r.port))
        lines.extend(real_line(service.key, real, name) for real in reals)
    return lines


def service_order(key: ServiceKey) -> tuple[int, int, int, int, int]:
    """ipvsadm --sort's order: mark (services without one first), family, protocol
    number, address as a number, port."""
    number = {Protocol.FWM: 0, Protocol.TCP: 6, Protocol.UDP: 17}[key.protocol]
    address = int(ipaddress.ip_address(key.address)) if key.address else 0
    return key.fwmark, key.family, number, address, key.port


def real_order(address: str, port: int) -> tuple[int, int]:
    """ipvsadm --sort's order of real servers: address as a number, then port."""
    return int(ipaddress.ip_address(address)), port


# -- parsing ---------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise RuleError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise RuleError((message or "not a rule").strip())


def add_rule_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """ipvsadm's command and service options, as `vigil lvs` and `-R` lines take them."""
    for flag, long, dest, text in (
            ("-A", "--add-service", "add_service", "add a virtual service"),
            ("-E", "--edit-service", "edit_service", "edit a virtual service"),
            ("-D", "--delete-service", "delete_service", "delete a virtual service"),
            ("-a", "--add-server", "add_server", "add a real server"),
            ("-e", "--edit-server", "edit_server", "edit a real server"),
            ("-d", "--delete-server", "delete_server", "delete a real server"),
            ("-C", "--clear", "clear", "delete every hand-kept virtual service")):
        parser.add_argument(flag, long, dest=dest, action="store_true", help=text)
    parser.add_argument("-t", "--tcp-service", dest="tcp", metavar="VIP:PORT")
    parser.add_argument("-u", "--udp-service", dest="udp", metavar="VIP:PORT")
    parser.add_argument("-f", "--fwmark-service", dest="fwmark", type=int, metavar="MARK")
    parser.add_argument("-6", "--ipv6", dest="ipv6", action="store_true")
    parser.add_argument("-s", "--scheduler", default=None)
    parser.add_argument("-p", "--persistent", nargs="?", const=300, type=int)
    parser.add_argument("-M", "--netmask")
    parser.add_argument("-b", "--sched-flags")
    parser.add_argument("-o", "--ops", action="store_true")
    parser.add_argument("-r", "--real-server", metavar="RIP[:PORT]")
    parser.add_argument("-g", "--gatewaying", dest="forward", action="store_const",
                        const=Forward.GATE)
    parser.add_argument("-m", "--masquerading", dest="forward", action="store_const",
                        const=Forward.MASQ)
    parser.add_argument("-i", "--ipip", dest="forward", action="store_const",
                        const=Forward.IPIP)
    parser.add_argument("-w", "--weight", type=int)
    parser.add_argument("-x", "--u-threshold", dest="upper", type=int, default=0)
    parser.add_argument("-y", "--l-threshold", dest="lower", type=int, default=0)


@functools.lru_cache(maxsize=1)
def _rule_parser() -> _Parser:
    """One parser for every line (argparse keeps no state between parse_args calls)."""
    parser = _Parser(prog="ipvsadm", add_help=False, allow_abbrev=False)
    add_rule_options(parser)
    return parser


def _endpoint(text: str, protocol: str, ports: PortLookup,
              default_port: int | None = None) -> tuple[str, int]:
    """`ADDR:PORT`, `[V6]:PORT`, or `ADDR` with the default port; PORT may be a name."""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, None
    if port is None:
        if default_port is None:
            raise RuleError(f"{text}: a port is needed")
        return address, default_port
    if port.isascii() and port.isdigit() and len(port) <= 5:
        return address, int(port)
    found = ports(port, protocol) if port.isascii() and port.isprintable() else None
    if found is None:
        raise RuleError(f"unknown port {port!r}")
    return address, found


def _netmask(text: str | None, family: int) -> str | None:
    """-M: a dotted mask or a prefix length (IPv6: a prefix length only), as ipvsadm."""
    if text is None:
        return None
    try:
        if family == 6:
            if not (text.isascii() and text.isdigit() and int(text) <= 128):
                raise ValueError
        else:
            ipaddress.IPv4Network(f"0.0.0.0/{text}")
    except ValueError:
        raise RuleError(f"bad netmask {text!r}") from None
    return text


def _sched_flags(text: str | None) -> tuple[str, ...]:
    flags = tuple(f for f in (text or "").split(",") if f)
    unknown = [f for f in flags if f not in SCHED_FLAGS]
    if unknown:
        raise RuleError(f"unknown scheduler flag {unknown[0]!r} "
                        f"(known: {', '.join(sorted(SCHED_FLAGS))})")
    return flags


def service_key_of(args: argparse.Namespace, ports: PortLookup = numeric_ports) -> ServiceKey:
    """The service that -t, -u or -f names (exactly one of them)."""
    try:
        return _service_key(args, ports)
    except RuleError:
        raise
    except ValueError as exc:
        raise RuleError(str(exc)) from None


def _service_key(args: argparse.Namespace, ports: PortLookup) -> ServiceKey:
    given = [args.tcp is not None, args.udp is not None, args.fwmark is not None]
    if sum(given) != 1:
        raise RuleError("a service is needed: one of -t VIP:PORT, -u VIP:PORT or -f MARK")
    if args.tcp is not None:
        return ServiceKey.tcp(*_endpoint(args.tcp, "tcp", ports))
    if args.udp is not None:
        return ServiceKey.udp(*_endpoint(args.udp, "udp", ports))
    if not 0 < args.fwmark <= U32:
        raise RuleError(f"firewall mark {args.fwmark} out of range 1..{U32}")
    return ServiceKey.fwm(args.fwmark, family=6 if args.ipv6 else 4)


def command_of(args: argparse.Namespace, ports: PortLookup = numeric_ports) -> Command:
    """Parsed ipvsadm options -> the one command they give (`RuleError` if they do not)."""
    chosen = [name for name in COMMANDS if getattr(args, name)]
    if len(chosen) != 1:
        raise RuleError("give exactly one of -A -E -D -a -e -d -C")
    if args.clear:
        return Clear()
    try:
        return _command(chosen[0], args, ports)
    except RuleError:
        raise
    except ValueError as exc:  # the model refuses a value (address, port, weight, mark)
        raise RuleError(str(exc)) from None


def _command(verb: str, args: argparse.Namespace, ports: PortLookup) -> Command:
    key = _service_key(args, ports)
    if verb in ("add_service", "edit_service"):
        scheduler = args.scheduler or "wlc"
        if not (scheduler.isascii() and scheduler.isalnum() and scheduler.islower()
                and len(scheduler) < SCHED_NAME_MAX):
            raise RuleError(f"bad scheduler name {scheduler!r}")
        service = VirtualService(
            key, scheduler=scheduler, persistent=args.persistent,
            netmask=_netmask(args.netmask, key.family), ops=args.ops,
            sched_flags=_sched_flags(args.sched_flags))
        if service.persistent is not None and not 0 <= service.persistent <= U32:
            raise RuleError(f"persistence timeout {service.persistent} out of range 0..{U32}")
        return AddService(service) if verb == "add_service" else EditService(service)
    if verb == "delete_service":
        return DeleteService(key)
    if not args.real_server:
        raise RuleError("a real server is needed: -r RIP[:PORT]")
    protocol = "udp" if key.protocol is Protocol.UDP else "tcp"
    address, port = _endpoint(args.real_server, protocol, ports, key.port)
    forward = args.forward or Forward.GATE
    if forward is not Forward.MASQ and key.protocol is not Protocol.FWM:
        port = key.port  # only NAT can change the port (as ipvsadm)
    if verb == "delete_server":
        return DeleteReal(key, RealKey(address, port))
    if not (0 <= args.upper <= 65535 and 0 <= args.lower <= 65535):
        raise RuleError("connection thresholds (-x, -y) are 0..65535")
    real = RealServer(address, port, weight=1 if args.weight is None else args.weight,
                      forward=forward, upper=args.upper, lower=args.lower)
    return AddReal(key, real) if verb == "add_server" else EditReal(key, real)


def parse_words(words: Sequence[str], ports: PortLookup = numeric_ports) -> Command:
    """One rule's words (without `ipvsadm`) -> its command."""
    return command_of(_rule_parser().parse_args(list(words)), ports)


def decode(data: bytes) -> str:
    """Restore input as text; input that is not UTF-8 is refused at its line."""
    if len(data) > MAX_INPUT:
        raise RuleError(f"input longer than {MAX_INPUT // (1 << 20)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError("not UTF-8 text", data[:exc.start].count(b"\n") + 1) from None


def parse_rules(text: str, ports: PortLookup = numeric_ports) -> list[Rule]:
    """Every rule of an ipvsadm -R input; the first bad line raises `RuleError` with its
    number, so nothing of a bad input is applied."""
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            words = _words(line)
            if words:
                rules.append(Rule(number, parse_words(words, ports)))
        except RuleError as exc:
            raise RuleError(exc.message, number) from None
    return rules


def _words(line: str) -> list[str]:
    if len(line) > MAX_LINE:
        raise RuleError(f"longer than {MAX_LINE} characters")
    if any(c != "\t" and not c.isprintable() for c in line):
        raise RuleError("holds a control character")
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return []
    try:
        words = shlex.split(stripped)
    except ValueError as exc:
        raise RuleError(str(exc)) from None
    if words and words[0] == "ipvsadm":
        words = words[1:]
    if not words:
        raise RuleError("no command")
    return words


def plan(rules: Iterable[Rule], table: Table) -> list[tuple[int, Operation]]:
    """Rules -> operations on `table` (a -C becomes a deletion of every service then held),
    each with its line; a rule that does not fit raises `RuleError` with its line.
    Applied in runs between -C's, not line by line: a long input stays linear."""
    operations: list[tuple[int, Operation]] = []
    run: list[tuple[int, Operation]] = []
    for rule in rules:
        if isinstance(rule.command, Clear):
            table = _apply_located(table, run)
            operations += run
            run = [(rule.line, DeleteService(s.key)) for s in table]
        else:
            run.append((rule.line, rule.command))
    _apply_located(table, run)
    return operations + run


def _apply_located(table: Table, steps: list[tuple[int, Operation]]) -> Table:
    """`steps` applied to `table`; when one does not fit, the first such is found by
    bisection and its line named."""
    try:
        return apply_operations(table, [op for _, op in steps])
    except OperationError as first:
        failure = first
    fits, fails = 0, len(steps)  # the shortest failing prefix lies in (fits, fails]
    while fails - fits > 1:
        middle = (fits + fails) // 2
        try:
            apply_operations(table, [op for _, op in steps[:middle]])
            fits = middle
        except OperationError as exc:
            fails, failure = middle, exc
    raise RuleError(str(failure), steps[fails - 1][0]) from None
