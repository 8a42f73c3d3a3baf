"""on, off and service=none: no exchange at all (on/none: up; off: never checked)."""

from __future__ import annotations

from vigil.director.checkers.base import CheckRequest, CheckResult


async def check_none(request: CheckRequest) -> CheckResult:
    return CheckResult.up("no check for this service")


async def check_off(request: CheckRequest) -> CheckResult:
    return CheckResult.down("checktype=off")
