"""ldirectord's checks: the types and the per-virtual check keys, one definition for
the ldirectord.cf model and the director.

Apart from `vigil.config.ldirectord` (which resolves host names) so that the
director's pure health policy can name them without importing any I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from vigil.config.base import SECRET

#: ldirectord's defaults in seconds (whole seconds in the file; the director keeps floats)
CHECK_TIMEOUT = 5
NEGOTIATE_TIMEOUT = 30
CHECK_INTERVAL = 10


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
