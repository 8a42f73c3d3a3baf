"""ldirectord's check types: one list, for the ldirectord.cf model and the director.

Apart from `vigil.config.ldirectord` (which resolves host names) so that the
director's pure health policy can name them without importing any I/O.
"""

from __future__ import annotations

import enum


class CheckType(enum.StrEnum):
    CONNECT = "connect"
    NEGOTIATE = "negotiate"
    PING = "ping"
    EXTERNAL = "external"
    EXTERNAL_PERL = "external-perl"
    ON = "on"
    OFF = "off"
    COMBINED = "combined"  # `checktype=N`: N connect checks, then one negotiate check
