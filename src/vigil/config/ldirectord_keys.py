"""ldirectord.cf's per-virtual keys: check types, check keys and policy keys, one
definition for the ldirectord.cf model and the director.

Apart from `vigil.config.ldirectord` (which resolves host names) so that the
director's pure health policy can name them without importing any I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from vigil.config.base import SECRET

#: ldirectord's defaults in seconds (whole seconds in the file; the director keeps floats)
CHECK_TIMEOUT = 5
NEGOTIATE_TIMEOUT = 30
CHECK_INTERVAL = 10

#: emailalertstatus's words and its default (every one)
EMAIL_STATES = ("starting", "running", "stopping", "reloading")


class CheckType(enum.StrEnum):
    CONNECT = "connect"
    NEGOTIATE = "negotiate"
    PING = "ping"
    EXTERNAL = "external"
    EXTERNAL_PERL = "external-perl"
    ON = "on"
    OFF = "off"
    COMBINED = "combined"  # `checktype=N`: N connect checks, then one negotiate check


@dataclass(frozen=True)
class CheckKeys:
    """How a virtual service's real servers are checked, as ldirectord.cf says it
    (with ldirectord's defaults): the parser's `VirtualService` and the director's
    `CheckSpec` both are these, so a key or a default is written once."""

    checktype: CheckType = CheckType.NEGOTIATE
    connect_count: int = 0  # for checktype=N (COMBINED): N connect checks per negotiate
    service: str = "none"
    checkcommand: str = "/bin/true"
    checkport: int | None = None
    request: str = "/"
    receive: str = ""
    httpmethod: str = "GET"
    virtualhost: str | None = None
    login: str = ""
    passwd: str = field(default="", metadata=SECRET)
    database: str = ""
    secret: str = field(default="", metadata=SECRET)
    # seconds: the file takes whole ones, the director and tests also fractions
    checktimeout: float = CHECK_TIMEOUT
    negotiatetimeout: float = NEGOTIATE_TIMEOUT
    checkcount: int = 1  # attempts per check (ldirectord: ping only)


@dataclass(frozen=True, kw_only=True)
class ServiceKeys:
    """What a virtual service does about its real servers' health, as ldirectord.cf
    says it (with ldirectord's defaults; globals folded in): shared by the parser's
    `VirtualService` and the director's `ServiceConfig`."""

    checkinterval: float = CHECK_INTERVAL
    failurecount: int = 1
    quiescent: bool = False
    cleanstop: bool = True
    fallbackcommand: str | None = None
    emailalertfreq: float = 0
    emailalertstatus: frozenset[str] = frozenset(EMAIL_STATES)
    smtp: str | None = None
    monitorfile: str | None = None
    servicename: str | None = None
    comment: str | None = None


def keys_of(record: object, keys: type) -> dict[str, Any]:
    """The values `record` holds for the fields of the keys dataclass `keys`."""
    return {f.name: getattr(record, f.name) for f in fields(keys)}
