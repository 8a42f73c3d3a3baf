"""Checks, one module per protocol, in explicit registries.

`CHECKTYPES` maps ldirectord's checktype to a check; `negotiate` looks the
service up in `SERVICES`. `checker_for()` resolves both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vigil.director.checkers import (
    connect,
    dns,
    external,
    ftp,
    http,
    imap,
    ldap,
    mysql,
    nntp,
    pgsql,
    ping,
    pop,
    radius,
    simpletcp,
    sip,
    smtp,
    static,
)
from vigil.director.checkers.base import CheckRequest, CheckResult

Check = Callable[[CheckRequest], Awaitable[CheckResult]]


async def _unsupported_oracle(request: CheckRequest) -> CheckResult:
    return CheckResult.down("the oracle check is not supported (no Oracle client here)")


SERVICES: dict[str, Check] = {
    "http": http.check_http,
    "https": http.check_https,
    "http_proxy": http.check_http_proxy,
    "ftp": ftp.check,
    "smtp": smtp.check,
    "submission": smtp.check,
    "pop": pop.check_pop,
    "pops": pop.check_pops,
    "imap": imap.check_imap,
    "imaps": imap.check_imaps,
    "ldap": ldap.check_ldap,
    "ldaps": ldap.check_ldaps,
    "nntp": nntp.check,
    "dns": dns.check,
    "mysql": mysql.check,
    "pgsql": pgsql.check,
    "oracle": _unsupported_oracle,
    "radius": radius.check,
    "sip": sip.check,
    "simpletcp": simpletcp.check,
    "none": static.check_none,
}

CHECKTYPES: dict[str, Check] = {
    "connect": connect.check,
    "ping": ping.check,
    "external": external.check,
    "external-perl": external.check,
    "on": static.check_none,
    "off": static.check_off,
}


def checker_for(checktype: str, service: str) -> Check:
    """The check to run for one round (combined rounds pass connect or negotiate)."""
    if checktype in ("negotiate", "combined"):
        try:
            return SERVICES[service]
        except KeyError:
            raise ValueError(f"unknown service {service!r}") from None
    try:
        return CHECKTYPES[checktype]
    except KeyError:
        raise ValueError(f"unknown checktype {checktype!r}") from None


__all__ = ["CHECKTYPES", "SERVICES", "CheckRequest", "CheckResult", "checker_for"]
