"""ldap, ldaps: bind (anonymous or login/passwd), search the DN in `request` with
base scope; exactly one entry whose DN matches `receive`. ldap3 in a thread."""

from __future__ import annotations

import asyncio

from vigil import patterns
from vigil.director.checkers.base import CheckRequest, CheckResult, describe, request_text


def _search(request: CheckRequest, tls: bool) -> list[str]:
    import ssl

    import ldap3

    spec = request.spec
    tls_config = None
    if tls:
        tls_config = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if spec.tls_verify else ssl.CERT_NONE,
            ca_certs_file=spec.tls_ca)
    server = ldap3.Server(request.address, port=request.port, use_ssl=tls, tls=tls_config,
                          connect_timeout=request.timeout)
    connection = ldap3.Connection(
        server, user=spec.login or None, password=spec.passwd or None,
        receive_timeout=request.timeout, auto_bind=True, raise_exceptions=True,
        source_address=request.source)
    try:
        connection.search(request_text(request.request), "(objectClass=*)",
                          search_scope=ldap3.BASE, attributes=[])
        return [entry.entry_dn for entry in connection.entries]
    finally:
        connection.unbind()


async def exchange(request: CheckRequest, tls: bool) -> CheckResult:
    try:
        dns = await asyncio.to_thread(_search, request, tls)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    if len(dns) != 1:
        return CheckResult.down(f"{len(dns)} entries for {request_text(request.request)!r}")
    if request.receive and not patterns.search_now(request.receive, dns[0]):
        return CheckResult.down(f"{dns[0]} does not match {request.receive!r}")
    return CheckResult.up(dns[0])


async def check_ldap(request: CheckRequest) -> CheckResult:
    return await exchange(request, tls=False)


async def check_ldaps(request: CheckRequest) -> CheckResult:
    return await exchange(request, tls=True)
