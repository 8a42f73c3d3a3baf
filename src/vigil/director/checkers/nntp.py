"""nntp: the server's banner starts with 2 (200/201 posting allowed or not)."""

from __future__ import annotations

from vigil.director.checkers.base import (
    CheckRequest,
    CheckResult,
    close_stream,
    describe,
    open_stream,
)


async def check(request: CheckRequest) -> CheckResult:
    try:
        reader, writer = await open_stream(request)
    except Exception as exc:
        return CheckResult.down(describe(exc))
    try:
        banner = (await reader.read(64)).decode(errors="replace").strip()
        if banner.startswith("2"):
            return CheckResult.up(banner)
        return CheckResult.down(banner or "no banner")
    except Exception as exc:
        return CheckResult.down(describe(exc))
    finally:
        await close_stream(writer)
