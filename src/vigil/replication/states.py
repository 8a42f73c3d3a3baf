"""Roles, connection, replication and disk states, with the legal transitions (DRBD's names)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from vigil.errors import VigilError


class Role(enum.Enum):
    PRIMARY = "Primary"
    SECONDARY = "Secondary"
    UNKNOWN = "Unknown"


class Conn(enum.Enum):
    STANDALONE = "StandAlone"
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTING = "Disconnecting"


class Repl(enum.Enum):
    OFF = "Off"
    WF_BITMAP = "WFBitMap"
    ESTABLISHED = "Established"
    SYNC_SOURCE = "SyncSource"
    SYNC_TARGET = "SyncTarget"
    VERIFY_S = "VerifyS"
    VERIFY_T = "VerifyT"


class Disk(enum.Enum):
    DISKLESS = "Diskless"
    INCONSISTENT = "Inconsistent"
    OUTDATED = "Outdated"
    CONSISTENT = "Consistent"
    UP_TO_DATE = "UpToDate"
    UNKNOWN = "DUnknown"


#: Connection state machine: an illegal change is a bug and raises.
CONN_TRANSITIONS: dict[Conn, set[Conn]] = {
    Conn.STANDALONE: {Conn.CONNECTING},
    Conn.CONNECTING: {Conn.CONNECTED, Conn.STANDALONE, Conn.DISCONNECTING},
    Conn.CONNECTED: {Conn.CONNECTING, Conn.DISCONNECTING, Conn.STANDALONE},
    Conn.DISCONNECTING: {Conn.STANDALONE, Conn.CONNECTING},
}

#: Replication states reachable from each (only while connected; OFF otherwise).
REPL_TRANSITIONS: dict[Repl, set[Repl]] = {
    Repl.OFF: {Repl.WF_BITMAP, Repl.ESTABLISHED},
    Repl.WF_BITMAP: {Repl.SYNC_SOURCE, Repl.SYNC_TARGET, Repl.OFF, Repl.ESTABLISHED},
    Repl.ESTABLISHED: {Repl.VERIFY_S, Repl.VERIFY_T, Repl.OFF, Repl.SYNC_SOURCE,
                       Repl.SYNC_TARGET},
    Repl.SYNC_SOURCE: {Repl.ESTABLISHED, Repl.OFF},
    Repl.SYNC_TARGET: {Repl.ESTABLISHED, Repl.OFF},
    Repl.VERIFY_S: {Repl.ESTABLISHED, Repl.OFF},
    Repl.VERIFY_T: {Repl.ESTABLISHED, Repl.OFF},
}


class IllegalTransition(RuntimeError):
    pass


def check(table: Mapping[Any, set[Any]], old: enum.Enum, new: enum.Enum) -> None:
    if old is not new and new not in table[old]:
        raise IllegalTransition(f"{old.value} -> {new.value}")


class StateChangeRefused(VigilError):
    """drbdadm's 'State change failed' (exit code 11)."""

    exit_code = 11


class SetupRefused(VigilError):
    """drbdsetup's configuration errors (ERR_CONNECTED, ERR_NO_DISK, ...): exit code 10."""

    exit_code = 10


class NotConfigured(VigilError):
    """The resource is not up on this node (drbdsetup's exit code 10)."""

    exit_code = 10
