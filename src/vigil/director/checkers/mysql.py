"""mysql: log in with login/passwd to `database` and run `request` (a SELECT);
at least one row must come back. PyMySQL runs in a worker thread with its own
socket timeouts, and the engine's timeout bounds the wait."""

from __future__ import annotations

import asyncio

from vigil.director.checkers.base import CheckRequest, CheckResult, describe, request_text


def _query(request: CheckRequest) -> int:
    import pymysql

    spec = request.spec
    timeout = max(1, int(request.timeout + 0.999))
    connection = pymysql.connect(
        host=request.address, port=request.port, user=spec.login, password=spec.passwd,
        database=spec.database or None, connect_timeout=timeout, read_timeout=timeout,
        write_timeout=timeout, bind_address=request.source,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(request_text(request.request))
            return len(cursor.fetchall())
    finally:
        connection.close()


async def check(request: CheckRequest) -> CheckResult:
    if not request.spec.login or not request.spec.database:
        return CheckResult.down("mysql check needs login and database")
    try:
        rows = await asyncio.to_thread(_query, request)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    if rows < 1:
        return CheckResult.down("query returned no rows")
    return CheckResult.up(f"{rows} rows")
