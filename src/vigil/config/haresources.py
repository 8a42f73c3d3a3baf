"""`/etc/ha.d/haresources`: the resource groups, read unchanged, and how each resource runs.

Syntax, as heartbeat's ResourceManager reads it: `#` starts a comment; a line
ending in a backslash continues on the next line (joined with nothing in
between, as heartbeat's sed does); each logical line is one resource group::

    home-node  resource1  resource2 ...  resourceN

Resources start left to right and stop right to left. The first resource is
the group's key (heartbeat's `takegroup`/`givegroup` use it), so it must be
unique. A resource is `name` or `name::arg1::arg2` (no spaces in arguments).
A bare IPv4 address (``10.0.0.10``, ``10.0.0.10/24/eth0``, ...) is heartbeat's
shorthand for ``IPaddr::10.0.0.10...``; vigil extends it to IPv6
(``2001:db8::10/64/eth0``). The home node is lower-cased.

vigil adds three explicit forms (documented in docs/config.md):

* ``ocf:PROVIDER:TYPE::key=value::key=value`` runs an OCF agent from
  /usr/lib/ocf/resource.d/PROVIDER/TYPE with those parameters
  (``OCF_RESKEY_key=value``). A `::` piece that is not ``key=value`` continues
  the previous value, so IPv6 addresses can be written as they are:
  ``ocf:heartbeat:IPaddr2::ip=2001:db8::10::cidr_netmask=64``.
* ``systemd:UNIT`` (``systemd:nginx`` or ``systemd:nginx.service``) runs a
  systemd unit; it takes no arguments.
* ``lsb:NAME`` runs the script NAME from /etc/ha.d/resource.d or /etc/init.d
  even when vigil has a built-in agent of that name.

The agents that take a single address argument (IPaddr, IPaddr2, IPv6addr,
IPsrcaddr, SendArp) get their `::` pieces joined back into one argument, so
``IPaddr2::2001:db8::10/64/eth0`` means what it says.

`ResourceResolver` tells how a name runs, in this order: vigil's built-in
agent (`BUILTIN_AGENTS`), then heartbeat's lookup order
(/etc/ha.d/resource.d/NAME, then /etc/init.d/NAME), for plain names; the
explicit forms go straight to their place. Its directories are injectable.

Agents are built from a `ResourceRef` with
``vigil.agents.factory.build_agent(ref.name, ref.args)``: its `args` are
already split and joined as described here (OCF values, IPv6 addresses).

Public API: `HaResources`, `ResourceGroup`, `ResourceRef`, `analyze`,
`parse`, `render`, `parse_resource`, `ResourceResolver`, `Resolution`,
`AgentKind`, `BUILTIN_AGENTS`.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from vigil.config.base import (
    NO_JSON,
    Diagnostics,
    FrozenMap,
    Parsed,
    SourceLine,
    ValueProblem,
    physical_lines,
)
from vigil.errors import Location

DEFAULT_PATH = "/etc/ha.d/haresources"

#: The agents vigil implements itself: a plain haresources name resolves to one of
#: these before heartbeat's resource.d and init.d (`vigil.agents.registry` builds them).
BUILTIN_AGENTS: frozenset[str] = frozenset(
    {
        "IPaddr",
        "IPaddr2",
        "SendArp",
        "IPsrcaddr",
        "Delay",
        "MailTo",
        "Filesystem",
        "drbddisk",
        "ldirectord",
    }
)

#: Agents whose only argument is an address spec: `::` pieces are joined back.
SINGLE_ARGUMENT_AGENTS = frozenset({"IPaddr", "IPaddr2", "IPv6addr", "IPsrcaddr", "SendArp"})

_OCF_NAME = re.compile(r"^ocf:([A-Za-z0-9_.+-]+):([A-Za-z0-9_.+-]+)$")
_OCF_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SYSTEMD_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")
_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9_.+@-]+$")


# ---------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class ResourceRef:
    """One resource of a group: `name` and its `::` arguments.

    `text` is the word as written (``10.0.0.10`` for the IPaddr shorthand); two
    references are equal when `name` and `args` are, however they were written.
    """

    text: str = field(compare=False)
    name: str
    args: tuple[str, ...] = ()
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)

    @property
    def label(self) -> str:
        """The canonical spelling: ``IPaddr::10.0.0.10/24/eth0``, ``mysqld``."""
        return "::".join((self.name, *self.args))

    @property
    def is_ocf(self) -> bool:
        return self.name.startswith("ocf:")

    @property
    def is_systemd(self) -> bool:
        return self.name.startswith("systemd:")

    @property
    def ocf_params(self) -> FrozenMap[str, str]:
        """For ``ocf:`` resources: the parameters (`OCF_RESKEY_key=value`)."""
        return FrozenMap(tuple(arg.split("=", 1)) for arg in self.args if "=" in arg)


@dataclass(frozen=True)
class ResourceGroup:
    """One haresources line: the home (preferred) node and its resources in start order."""

    node: str
    resources: tuple[ResourceRef, ...]
    location: Location | None = field(default=None, compare=False, repr=False, metadata=NO_JSON)

    @property
    def key(self) -> str:
        """The group's identity: its first resource (heartbeat's group key)."""
        return self.resources[0].label if self.resources else ""


@dataclass(frozen=True)
class HaResources:
    groups: tuple[ResourceGroup, ...] = ()
    path: str = field(default=DEFAULT_PATH, compare=False, metadata=NO_JSON)

    def group(self, key: str) -> ResourceGroup | None:
        for group in self.groups:
            if group.key == key:
                return group
        return None

    def groups_of(self, node: str) -> tuple[ResourceGroup, ...]:
        """The groups whose home node is `node` (heartbeat's "local" groups there)."""
        return tuple(g for g in self.groups if g.node == node.lower())

    @property
    def resources(self) -> tuple[ResourceRef, ...]:
        return tuple(r for g in self.groups for r in g.resources)


# ---------------------------------------------------------------------------
# Parsing


def is_ip_shorthand(word: str) -> bool:
    """A bare address standing for ``IPaddr::word``.

    IPv4: heartbeat's own test, the glob ``[0-9]*.[0-9]*.[0-9]*.[0-9]*``.
    IPv6 (vigil's addition, as its IPaddr agent handles IPv6): the part before
    the first ``/`` is an IPv6 address (``2001:db8::10/64/eth0``).
    """
    if re.fullmatch(r"[0-9].*\..*\..*\..*", word) and "::" not in word:
        return True
    try:
        return ipaddress.ip_address(word.split("/", 1)[0]).version == 6
    except ValueError:
        return False


def parse_resource(word: str, location: Location | None = None) -> ResourceRef:
    """Turn one haresources word into a `ResourceRef`; `ValueProblem` when it cannot be."""
    if not word:
        raise ValueProblem("empty resource")
    if is_ip_shorthand(word):
        return ResourceRef(word, "IPaddr", (word,), location)
    parts = word.split("::")
    name, args = parts[0], parts[1:]
    if not name:
        raise ValueProblem(f"resource {word!r} has no name before '::'")
    if name.startswith("ocf:"):
        if not _OCF_NAME.match(name):
            raise ValueProblem(f"bad OCF resource {name!r}: write ocf:PROVIDER:TYPE, "
                               "e.g. ocf:heartbeat:IPaddr2")
        joined: list[str] = []
        for piece in args:
            if _OCF_PARAM.match(piece):
                joined.append(piece)
            elif joined:
                joined[-1] += "::" + piece
            else:
                raise ValueProblem(f"OCF parameter {piece!r} is not key=value "
                                   f"(write {name}::key=value::key=value)")
        keys = [p.split("=", 1)[0] for p in joined]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueProblem(f"OCF parameter {duplicates[0]} given twice")
        return ResourceRef(word, name, tuple(joined), location)
    if name.startswith("systemd:"):
        unit = name[len("systemd:"):]
        if not unit or not _SYSTEMD_UNIT.match(unit):
            raise ValueProblem(f"bad systemd unit name in {name!r}: write systemd:UNIT, "
                               "e.g. systemd:nginx")
        if args:
            raise ValueProblem(f"{name} takes no '::' arguments (systemd units have none)")
        return ResourceRef(word, name, (), location)
    if name.startswith("lsb:"):
        script = name[len("lsb:"):]
        if not script or not _SCRIPT_NAME.match(script):
            raise ValueProblem(f"bad init script name in {name!r}: write lsb:NAME")
        return ResourceRef(word, name, tuple(args), location)
    if not _SCRIPT_NAME.match(name):
        raise ValueProblem(f"bad resource name {name!r}")
    if name in SINGLE_ARGUMENT_AGENTS and len(args) > 1:
        args = ["::".join(args)]
    return ResourceRef(word, name, tuple(args), location)


@dataclass
class _Char:
    line: SourceLine
    column: int


def _logical_lines(text: str, path: str,
                   diags: Diagnostics) -> Iterable[tuple[str, list[_Char]]]:
    """Join continued lines; yield each logical line with where every character came from."""
    chars: list[_Char] = []
    buffer = ""
    continuing = False
    for line in physical_lines(text, path):
        content = line.text
        cut = content.find("#")
        if cut >= 0:
            if continuing and content[cut:].strip():
                diags.warning(line, cut + 1,
                              "comment on a continued line: heartbeat does not strip it and "
                              "would read its words as resources")
            content = content[:cut]
        if content.rstrip().endswith("\\") and not content.endswith("\\"):
            diags.warning(line, len(content.rstrip()),
                          "blanks after the backslash: the line is not continued")
        if content.endswith("\\"):
            body = content[:-1]
            buffer += body
            chars.extend(_Char(line, i + 1) for i in range(len(body)))
            continuing = True
            continue
        buffer += content
        chars.extend(_Char(line, i + 1) for i in range(len(content)))
        yield buffer, chars
        buffer, chars, continuing = "", [], False
    if buffer.strip():
        yield buffer, chars


def analyze(text: str, path: str = DEFAULT_PATH) -> Parsed[HaResources]:
    """Parse haresources, collecting every problem; never raises for bad input."""
    diags = Diagnostics(path)
    groups: list[ResourceGroup] = []
    keys: dict[str, Location | None] = {}
    seen: dict[str, Location | None] = {}
    for logical, chars in _logical_lines(text, path, diags):
        words = list(re.finditer(r"[^ \t\f\v\r]+", logical))
        if not words:
            continue
        first = chars[words[0].start()]
        node = words[0].group().lower()
        if len(words) == 1:
            diags.error(first.line, first.column,
                        f"group for {words[0].group()} lists no resources")
            continue
        resources: list[ResourceRef] = []
        for match in words[1:]:
            origin = chars[match.start()]
            try:
                resources.append(parse_resource(match.group(), origin.line.at(origin.column)))
            except ValueProblem as problem:
                diags.error(origin.line, origin.column, str(problem))
        if not resources:
            continue
        group = ResourceGroup(node, tuple(resources), first.line.at(first.column))
        if group.key in keys:
            other = keys[group.key]
            origin = chars[words[1].start()]
            diags.error(origin.line, origin.column,
                        f"{group.key} starts two groups (also line "
                        f"{other.line if other else '?'}): the first resource names the group "
                        "and must be unique")
            continue
        for ref in resources:
            previous = seen.get(ref.label)
            if previous is not None and ref.location is not None:
                diags.warning(_line_of(ref.location, text, path), ref.location.column,
                              f"{ref.label} is also in the group on line {previous.line}: "
                              "two groups would fight over it")
            elif previous is None:
                seen[ref.label] = ref.location
        keys[group.key] = group.location
        groups.append(group)
    return Parsed(HaResources(tuple(groups), path), diags.freeze())


def _line_of(location: Location, text: str, path: str) -> SourceLine:
    lines = text.split("\n")
    raw = lines[location.line - 1] if 0 < location.line <= len(lines) else ""
    return SourceLine(path, location.line, raw.removesuffix("\r"))


def parse(text: str, path: str = DEFAULT_PATH) -> HaResources:
    """Parse haresources or raise `ConfigErrors` naming every mistake."""
    return analyze(text, path).unwrap()


def render(config: HaResources) -> str:
    """A haresources text that parses back to an equal model (one line per group)."""
    lines = ["# haresources written by vigil: keep it identical on every node"]
    for group in config.groups:
        lines.append(" ".join((group.node, *(_render_ref(r) for r in group.resources))))
    return "\n".join(lines) + "\n"


def _render_ref(ref: ResourceRef) -> str:
    try:
        if parse_resource(ref.text) == ref:
            return ref.text
    except ValueProblem:
        pass
    return ref.label


# ---------------------------------------------------------------------------
# Resolution


class AgentKind(enum.StrEnum):
    """How a resource runs."""

    BUILTIN = "builtin"  # vigil's own Python agent
    HEARTBEAT = "heartbeat"  # a script in /etc/ha.d/resource.d
    LSB = "lsb"  # an init script in /etc/init.d
    OCF = "ocf"  # an OCF resource agent
    SYSTEMD = "systemd"  # a systemd unit


@dataclass(frozen=True)
class Resolution:
    """Where a resource's agent is: its kind, its path (none for built-ins), OCF/systemd names."""

    kind: AgentKind
    agent: str
    path: str | None = None
    provider: str | None = None
    unit: str | None = None


class ResolveError(ValueError):
    """A resource name that runs nothing; the message says where vigil looked."""


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


@dataclass(frozen=True)
class ResourceResolver:
    """Finds the agent of a resource. Every directory is injectable (tests use tmp dirs)."""

    resource_dirs: tuple[str, ...] = ("/etc/ha.d/resource.d",)
    init_dirs: tuple[str, ...] = ("/etc/init.d",)
    ocf_root: str = "/usr/lib/ocf/resource.d"
    systemd_dirs: tuple[str, ...] = (
        "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
        "/lib/systemd/system", "/usr/lib/systemd/system",
    )
    builtins: frozenset[str] = BUILTIN_AGENTS

    def resolve(self, ref: ResourceRef) -> Resolution:
        """How `ref` runs, or `ResolveError` saying what is missing."""
        name = ref.name
        if name.startswith("ocf:"):
            _, provider, agent = name.split(":", 2)
            path = os.path.join(self.ocf_root, provider, agent)
            if not _executable(path):
                raise ResolveError(f"OCF agent {provider}:{agent} not found: no executable "
                                   f"{path}")
            return Resolution(AgentKind.OCF, agent, path, provider=provider)
        if name.startswith("systemd:"):
            unit = name[len("systemd:"):]
            if "." not in unit:
                unit += ".service"
            candidates = [unit]
            if "@" in unit:
                base, _, suffix = unit.partition("@")
                candidates.append(f"{base}@.{suffix.rsplit('.', 1)[-1]}")
            for directory in self.systemd_dirs:
                for candidate in candidates:
                    path = os.path.join(directory, candidate)
                    if os.path.isfile(path):
                        return Resolution(AgentKind.SYSTEMD, unit, path, unit=unit)
            raise ResolveError(f"systemd unit {unit} not found in "
                               f"{', '.join(self.systemd_dirs)}")
        script = name.removeprefix("lsb:")
        if name in self.builtins:
            return Resolution(AgentKind.BUILTIN, name)
        for directory in self.resource_dirs:
            path = os.path.join(directory, script)
            if _executable(path):
                return Resolution(AgentKind.HEARTBEAT, script, path)
        for directory in self.init_dirs:
            path = os.path.join(directory, script)
            if _executable(path):
                return Resolution(AgentKind.LSB, script, path)
        looked = [os.path.join(d, script) for d in (*self.resource_dirs, *self.init_dirs)]
        what = "" if name.startswith("lsb:") else "not a vigil built-in agent and "
        raise ResolveError(f"cannot locate resource {name}: {what}no executable "
                           f"{' or '.join(looked)}")


__all__ = [
    "BUILTIN_AGENTS",
    "DEFAULT_PATH",
    "SINGLE_ARGUMENT_AGENTS",
    "AgentKind",
    "HaResources",
    "Resolution",
    "ResolveError",
    "ResourceGroup",
    "ResourceRef",
    "ResourceResolver",
    "analyze",
    "is_ip_shorthand",
    "parse",
    "parse_resource",
    "render",
]
