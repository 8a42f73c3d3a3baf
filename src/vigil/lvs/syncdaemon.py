"""IPVS's connection synchronisation daemon: its settings, checked, and its netlink form.

The kernel's sync daemon keeps a backup director's connection table in step with
the master's (multicast on one interface, grouped by a sync id), so that after a
director failover the established connections are forwarded to the real servers
they already had (keepalived's `lvs_sync_daemon`, ipvsadm's `--start-daemon`).
The kernel runs at most one master and one backup per network namespace.

Pure: what the settings are, what ipvsadm prints for them, and the kernel's
`IPVS_CMD_ATTR_DAEMON` attributes both ways (a decoder bounded like any other
that reads outside data).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import Any

#: the kernel's sync message size ceiling (the largest UDP payload over IPv4)
MAX_SYNC_MAXLEN = 65507
#: interface names: IFNAMSIZ less the terminating NUL
MAX_IFNAME = 15
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
#: at most this many bytes of attributes are read from one kernel answer
MAX_ATTRIBUTES = 4096


class SyncState(enum.StrEnum):
    """Which way a sync daemon sends: the active director is master, a standby backup."""

    MASTER = "master"
    BACKUP = "backup"

    @property
    def kernel(self) -> int:
        """IP_VS_STATE_MASTER / IP_VS_STATE_BACKUP."""
        return 1 if self is SyncState.MASTER else 2

    @classmethod
    def from_kernel(cls, value: int) -> SyncState:
        for state in cls:
            if state.kernel == value:
                return state
        raise ValueError(f"unknown sync daemon state {value}")


class SyncDaemonError(ValueError):
    """Settings the kernel would refuse, said before it is asked."""


def state_from_json(value: object) -> SyncState:
    """A state named in a control request: master or backup, nothing else."""
    if not isinstance(value, str) or value not in {s.value for s in SyncState}:
        raise SyncDaemonError(f"sync daemon state must be master or backup, not {value!r}")
    return SyncState(value)


@dataclass(frozen=True)
class SyncDaemon:
    """One sync daemon as ipvsadm --start-daemon takes it; None leaves the kernel's default
    (maxlen from the interface MTU, group 224.0.0.81 or ff02::8000:81, port 8848, ttl 1)."""

    state: SyncState
    interface: str
    syncid: int = 0
    maxlen: int | None = None
    group: str | None = None
    port: int | None = None
    ttl: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", SyncState(self.state))
        if not _IFNAME.match(self.interface):
            raise SyncDaemonError(f"bad multicast interface {self.interface!r} (a network "
                                  f"interface name, at most {MAX_IFNAME} characters)")
        _bounded("syncid", self.syncid, 0, 255)
        if self.maxlen is not None:
            _bounded("sync-maxlen", self.maxlen, 1, MAX_SYNC_MAXLEN)
        if self.port is not None:
            _bounded("mcast-port", self.port, 1, 65535)
        if self.ttl is not None:
            _bounded("mcast-ttl", self.ttl, 1, 255)
        if self.group is not None:
            try:
                group = ipaddress.ip_address(self.group)
            except ValueError:
                raise SyncDaemonError(f"bad mcast-group {self.group!r}") from None
            if not group.is_multicast:
                raise SyncDaemonError(f"mcast-group {group} is not a multicast address")
            object.__setattr__(self, "group", str(group))

    def describe(self) -> str:
        """ipvsadm -L --daemon's line."""
        parts = [f"mcast={self.interface}", f"syncid={self.syncid}"]
        for name in ("maxlen", "group", "port", "ttl"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        return f"{self.state} sync daemon ({', '.join(parts)})"

    def to_json(self) -> dict[str, Any]:
        return {"state": str(self.state), "interface": self.interface, "syncid": self.syncid,
                "maxlen": self.maxlen, "group": self.group, "port": self.port, "ttl": self.ttl}

    @classmethod
    def from_json(cls, data: object) -> SyncDaemon:
        """From a control request: only the named fields, each of its type."""
        if not isinstance(data, dict):
            raise SyncDaemonError("a sync daemon is an object")
        state = state_from_json(data.get("state"))
        interface = data.get("interface")
        if not isinstance(interface, str):
            raise SyncDaemonError("a sync daemon needs its multicast interface")
        numbers: dict[str, int | None] = {}
        for name in ("syncid", "maxlen", "port", "ttl"):
            value = data.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise SyncDaemonError(f"sync daemon {name} must be a number")
            numbers[name] = value
        group = data.get("group")
        if group is not None and not isinstance(group, str):
            raise SyncDaemonError("sync daemon group must be an address")
        return cls(state, interface, numbers["syncid"] or 0, numbers["maxlen"],
                   group, numbers["port"], numbers["ttl"])

    def attributes(self) -> list[tuple[str, Any]]:
        """The `IPVS_DAEMON_ATTR_*` of IPVS_CMD_NEW_DAEMON."""
        attrs: list[tuple[str, Any]] = [
            ("IPVS_DAEMON_ATTR_STATE", self.state.kernel),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", self.interface),
            ("IPVS_DAEMON_ATTR_SYNC_ID", self.syncid),
        ]
        if self.maxlen is not None:
            attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", self.maxlen))
        if self.group is not None:
            six = ipaddress.ip_address(self.group).version == 6
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP6" if six else
                          "IPVS_DAEMON_ATTR_MCAST_GROUP", self.group))
        if self.port is not None:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", self.port))
        if self.ttl is not None:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", self.ttl))
        return attrs


#: the words of `lvs_sync_daemon` after the interface (keepalived's), each with a value
SETTING_WORDS = {"id": "syncid", "maxlen": "maxlen", "port": "port", "ttl": "ttl",
                 "group": "group"}


def parse_setting(text: str) -> SyncDaemon:
    """vigil.cf's `lvs_sync_daemon IF [id N] [maxlen N] [port P] [ttl T] [group A]`, as
    keepalived writes it (less its VRRP instance: the director's role decides). The
    state is MASTER here; the director runs it as BACKUP while it is a standby."""
    words = text.split()
    if not words:
        raise SyncDaemonError("lvs_sync_daemon needs the multicast interface")
    interface, rest = words[0], words[1:]
    values: dict[str, int | str] = {}
    for at in range(0, len(rest), 2):
        word = rest[at]
        name = SETTING_WORDS.get(word)
        if name is None:
            vrrp = " (vigil has no VRRP instance: the director's role decides)" \
                if at == 0 else ""
            raise SyncDaemonError(f"lvs_sync_daemon: unknown word {word!r} (expected "
                                  f"{', '.join(SETTING_WORDS)}){vrrp}")
        if at + 1 >= len(rest):
            raise SyncDaemonError(f"lvs_sync_daemon: {word!r} needs a value")
        if name in values:
            raise SyncDaemonError(f"lvs_sync_daemon: {word} given twice")
        value = rest[at + 1]
        if name == "group":
            values[name] = value
        elif value.isdigit() and len(value) <= 6:
            values[name] = int(value)
        else:
            raise SyncDaemonError(f"lvs_sync_daemon: {word} takes a whole number, "
                                  f"not {value!r}")
    return SyncDaemon(SyncState.MASTER, interface, **values)  # type: ignore[arg-type]


def _bounded(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SyncDaemonError(f"{name} must be a whole number from {low} to {high}, "
                              f"not {value!r}")


# the kernel's attribute numbers (include/uapi/linux/ip_vs.h, enum IPVS_DAEMON_ATTR_*)
_STATE, _IFN, _SYNC_ID, _MAXLEN, _GROUP, _GROUP6, _PORT, _TTL = range(1, 9)


def decode(data: bytes) -> SyncDaemon:
    """One daemon from the kernel's nested attributes (a GET_DAEMON answer's payload);
    `ValueError` when they are damaged, truncated or name no daemon."""
    if len(data) > MAX_ATTRIBUTES:
        raise ValueError(f"sync daemon attributes of {len(data)} bytes")
    values: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4 or offset + length > len(data):
            raise ValueError(f"sync daemon attribute of bad length {length} at {offset}")
        values[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    if offset < len(data) and any(data[offset:]):
        raise ValueError("sync daemon attributes end in the middle of one")

    def number(kind: int, fmt: str) -> int | None:
        raw = values.get(kind)
        if raw is None:
            return None
        size = struct.calcsize(fmt)
        if len(raw) < size:
            raise ValueError(f"sync daemon attribute {kind} is {len(raw)} bytes")
        value: int = struct.unpack_from(fmt, raw)[0]
        return value

    state = number(_STATE, "=I")
    name = values.get(_IFN)
    if state is None or name is None:
        raise ValueError("a sync daemon without state or interface")
    interface = name.split(b"\0", 1)[0].decode("ascii", "replace")
    group = None
    if _GROUP in values and len(values[_GROUP]) >= 4:
        group = str(ipaddress.IPv4Address(values[_GROUP][:4]))
    elif _GROUP6 in values and len(values[_GROUP6]) >= 16:
        group = str(ipaddress.IPv6Address(values[_GROUP6][:16]))
    try:
        return SyncDaemon(SyncState.from_kernel(state), interface,
                          number(_SYNC_ID, "=I") or 0, number(_MAXLEN, "=H"), group,
                          number(_PORT, "=H"), number(_TTL, "=B"))
    except SyncDaemonError as exc:
        raise ValueError(str(exc)) from None
