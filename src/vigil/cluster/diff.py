"""Reload semantics: what changed between two configurations, as a pure diff.

A daemon that reloads (SIGHUP, `vigil reload`) parses the new files, and if
they are valid calls ``diff(old, new)``; it applies the changes it can apply
live and keeps its state for everything else, so a reload never flaps what
did not change. Collections are compared by identity, not position:

* ha.cf: settings by name; nodes, media and ping nodes added/removed;
* authkeys: the signing key, keys added/removed/changed (secrets masked);
* haresources: groups by their key (first resource), added, removed, or
  changed (home node or resource list);
* vigil.cf: settings, and `agent`/`resource` sections by name;
* ldirectord: per config file; globals; virtual services by id
  (``tcp:VIP:PORT``, ``fwm:N``); real servers of a virtual by address/port;
* DRBD: resources by name; options per section; hosts by name.

Each `Change` says whether it can be applied live or needs the part it
belongs to restarted (`Effect.RESTART`: heartbeat media, wire format, DRBD
addresses and disks), which is what heartbeat and drbdadm also require.

Public API: `diff(old, new) -> ConfigDiff`, `Change`, `Effect`, `ConfigDiff`
(with `groups_added`, `groups_removed`, `groups_changed`, `restart_needed`,
`for_section`, `summary()`), and the per-file helpers `diff_hacf`,
`diff_authkeys`, `diff_haresources`, `diff_extension`, `diff_ldirectord`,
`diff_drbd`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vigil.cluster.loader import ClusterConfig
from vigil.config.authkeys import AuthKeys
from vigil.config.base import MASK, format_time
from vigil.config.drbd import DrbdConfig
from vigil.config.extension import ExtensionConfig
from vigil.config.hacf import HaCf
from vigil.config.haresources import HaResources
from vigil.config.ldirectord import LdirectordConfig, VirtualService


class Effect(enum.StrEnum):
    LIVE = "live"  # applied by a reload, nothing else disturbed
    RESTART = "restart"  # the part it belongs to must restart (a reload logs it and keeps the old)


@dataclass(frozen=True)
class Change:
    """One difference: where (`section`, `key`), what (`kind`), the values, the effect."""

    section: str
    key: str
    kind: str  # added | removed | changed
    old: Any = None
    new: Any = None
    effect: Effect = Effect.LIVE

    def __str__(self) -> str:
        if self.kind == "changed":
            text = f"{self.section}: {self.key} changed from {_show(self.old)} to {_show(self.new)}"
        elif self.kind == "added":
            text = f"{self.section}: {self.key} added"
        else:
            text = f"{self.section}: {self.key} removed"
        if self.effect is Effect.RESTART:
            text += " (needs a restart)"
        return text


def _show(value: Any) -> str:
    if isinstance(value, float):
        text = format_time(value)
        return text if text.endswith("ms") else text + "s"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list, frozenset, set)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if value is None:
        return "(unset)"
    return str(value)


@dataclass(frozen=True)
class ConfigDiff:
    changes: tuple[Change, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def sections(self) -> tuple[str, ...]:
        seen: list[str] = []
        for change in self.changes:
            if change.section not in seen:
                seen.append(change.section)
        return tuple(seen)

    def for_section(self, section: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.section == section)

    @property
    def restart_needed(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.effect is Effect.RESTART)

    def _group_keys(self, kind: str) -> tuple[str, ...]:
        return tuple(c.key.removeprefix("group ") for c in self.changes
                     if c.section == "haresources" and c.kind == kind)

    @property
    def groups_added(self) -> tuple[str, ...]:
        return self._group_keys("added")

    @property
    def groups_removed(self) -> tuple[str, ...]:
        return self._group_keys("removed")

    @property
    def groups_changed(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self._group_keys("changed")))

    def summary(self) -> list[str]:
        """One line per change, for the daemon's log."""
        return [str(c) for c in self.changes]


# ---------------------------------------------------------------------------
# Generic helpers


def _secret_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("secret"))


def _fields(section: str, prefix: str, old: Any, new: Any, skip: Iterable[str] = (),
            restart: Iterable[str] = (), effect: Effect = Effect.LIVE) -> list[Change]:
    """Field-by-field changes of two dataclasses of the same type."""
    out: list[Change] = []
    skipped = set(skip)
    restarts = set(restart)
    secret = _secret_fields(type(old))
    for f in dataclasses.fields(old):
        if f.name in skipped or not f.compare:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        if f.name in secret:
            a, b = (MASK if a else a), (MASK if b else b)
        this = Effect.RESTART if f.name in restarts else effect
        out.append(Change(section, prefix + f.name, "changed", a, b, this))
    return out


def _keyed(section: str, label: str, old: Iterable[Any], new: Iterable[Any],
           key: Callable[[Any], Any], inner: Callable[[Any, Any], list[Change]] | None = None,
           effect: Effect = Effect.LIVE) -> list[Change]:
    """Added, removed and (through `inner`) changed members of two collections."""
    before = {key(x): x for x in old}
    after = {key(x): x for x in new}
    out: list[Change] = []
    for k, item in before.items():
        if k not in after:
            out.append(Change(section, f"{label} {_show(k)}", "removed", item, None, effect))
    for k, item in after.items():
        if k not in before:
            out.append(Change(section, f"{label} {_show(k)}", "added", None, item, effect))
        elif before[k] != item:
            if inner is not None:
                out.extend(inner(before[k], item))
            elif dataclasses.is_dataclass(item):
                out.extend(_fields(section, f"{label} {_show(k)} ", before[k], item,
                                   effect=effect))
            else:
                out.append(Change(section, f"{label} {_show(k)}", "changed", before[k], item,
                                  effect))
    return out


# ---------------------------------------------------------------------------
# Per file

#: ha.cf settings heartbeat itself cannot change without restarting its media processes.
HACF_RESTART = frozenset({"udpport", "baud", "msgfmt", "compression", "compression_threshold",
                          "traditional_compression", "realtime", "rtprio", "hbgenmethod",
                          "uuidfrom", "cluster", "watchdog"})


def diff_hacf(old: HaCf, new: HaCf) -> list[Change]:
    s = "ha.cf"
    out = _fields(s, "", old, new, skip=("nodes", "media", "ping_nodes"), restart=HACF_RESTART)
    out += _keyed(s, "node", old.nodes, new.nodes, key=lambda n: n)
    out += _keyed(s, "medium", old.media, new.media, key=_medium_key, effect=Effect.RESTART)
    out += _keyed(s, "ping node", old.ping_nodes, new.ping_nodes, key=lambda p: p.name)
    return out


def _medium_key(medium: Any) -> str:
    parts = [medium.kind] + [str(getattr(medium, f.name)) for f in dataclasses.fields(medium)
                             if f.compare]
    return " ".join(parts)


def diff_authkeys(old: AuthKeys, new: AuthKeys) -> list[Change]:
    s = "authkeys"
    out: list[Change] = []
    if old.auth != new.auth:
        out.append(Change(s, "signing key (auth)", "changed", old.auth, new.auth))

    def key_changed(a: Any, b: Any) -> list[Change]:
        if a.method != b.method:
            return [Change(s, f"key {a.number}", "changed", str(a.method), str(b.method))]
        return [Change(s, f"key {a.number} secret", "changed", MASK, MASK)]

    out += _keyed(s, "key", old.keys.values(), new.keys.values(), key=lambda k: k.number,
                  inner=key_changed)
    return out


def diff_haresources(old: HaResources, new: HaResources) -> list[Change]:
    s = "haresources"

    def group_changed(a: Any, b: Any) -> list[Change]:
        out: list[Change] = []
        if a.node != b.node:
            out.append(Change(s, f"group {a.key}", "changed", f"home {a.node}",
                              f"home {b.node}"))
        if a.resources != b.resources:
            out.append(Change(s, f"group {a.key}", "changed",
                              tuple(r.label for r in a.resources),
                              tuple(r.label for r in b.resources)))
        return out

    return _keyed(s, "group", old.groups, new.groups, key=lambda g: g.key, inner=group_changed)


def diff_extension(old: ExtensionConfig, new: ExtensionConfig) -> list[Change]:
    s = "vigil.cf"
    out = _fields(s, "", old, new, skip=("defaults", "agents", "resources"),
                  restart=("control_socket", "metrics_address", "state_dir"))
    out += _fields(s, "", old.defaults, new.defaults)
    for label, a, b in (("agent", old.agents, new.agents),
                        ("resource", old.resources, new.resources)):
        out += _keyed(s, label, a.values(), b.values(), key=lambda o: o.name)
    return out


def diff_ldirectord(name: str, old: LdirectordConfig, new: LdirectordConfig) -> list[Change]:
    s = f"ldirectord {name}"
    out = _fields(s, "", old, new, skip=("virtuals",))

    def virtual_changed(a: VirtualService, b: VirtualService) -> list[Change]:
        prefix = f"virtual {a.ident} "
        changes = _fields(s, prefix, a, b, skip=("reals",))
        changes += _keyed(s, prefix + "real", a.reals, b.reals,
                          key=lambda r: f"{r.address}{'->' + r.last if r.last else ''}:{r.port}")
        return changes

    out += _keyed(s, "virtual", old.virtuals, new.virtuals, key=lambda v: v.ident,
                  inner=virtual_changed)
    return out


def diff_drbd(old: DrbdConfig | None, new: DrbdConfig | None) -> list[Change]:
    s = "drbd"
    if old == new:
        return []
    if old is None or new is None:
        return [Change(s, "configuration", "added" if old is None else "removed", old, new)]
    out = _fields(s, "global ", old.global_options, new.global_options)

    def resource_changed(a: Any, b: Any) -> list[Change]:
        prefix = f"resource {a.name} "
        changes: list[Change] = []
        for section in ("net", "disk", "startup", "options"):
            changes += _fields(s, f"{prefix}{section}.", getattr(a, section),
                               getattr(b, section))
        changes += _keyed(s, prefix + "handler", a.handlers.items(), b.handlers.items(),
                          key=lambda kv: kv[0])
        changes += _keyed(s, prefix + "host", a.hosts, b.hosts, key=lambda h: " ".join(h.names),
                          effect=Effect.RESTART)
        return changes

    out += _keyed(s, "resource", old.resources, new.resources, key=lambda r: r.name,
                  inner=resource_changed)
    return out


def diff(old: ClusterConfig, new: ClusterConfig) -> ConfigDiff:
    """Every difference between two loaded configurations, file by file."""
    changes: list[Change] = []
    changes += diff_hacf(old.hacf, new.hacf)
    changes += diff_authkeys(old.authkeys, new.authkeys)
    changes += diff_haresources(old.haresources, new.haresources)
    changes += diff_extension(old.extension, new.extension)
    changes += _ldirectord_all(old.ldirectord, new.ldirectord)
    changes += diff_drbd(old.drbd, new.drbd)
    return ConfigDiff(tuple(changes))


def _ldirectord_all(old: Mapping[str, LdirectordConfig],
                    new: Mapping[str, LdirectordConfig]) -> list[Change]:
    out: list[Change] = []
    for name in old:
        if name not in new:
            out.append(Change("ldirectord", name, "removed", old[name], None))
    for name, config in new.items():
        if name not in old:
            out.append(Change("ldirectord", name, "added", None, config))
        elif old[name] != config:
            out += diff_ldirectord(name, old[name], config)
    return out


__all__ = [
    "HACF_RESTART",
    "Change",
    "ConfigDiff",
    "Effect",
    "diff",
    "diff_authkeys",
    "diff_drbd",
    "diff_extension",
    "diff_hacf",
    "diff_haresources",
    "diff_ldirectord",
]
