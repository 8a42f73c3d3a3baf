"""external (and external-perl): run `checkcommand VIP|FWMARK VPORT RIP RPORT`;
exit 0 = up. It runs in its own process group and is killed on timeout."""

from __future__ import annotations

import shlex

from vigil.director.checkers.base import CheckRequest, CheckResult
from vigil.subprocesses import run_program


def argv(request: CheckRequest) -> list[str]:
    virtual = request.virtual
    where = str(virtual.fwmark) if virtual.fwmark else virtual.address
    return [*shlex.split(request.spec.checkcommand), where, str(virtual.port),
            request.address, str(request.real_port)]


async def check(request: CheckRequest) -> CheckResult:
    result = await run_program(argv(request), timeout=request.timeout)
    tail = result.output.strip().splitlines()[-1:] if result.output.strip() else []
    detail = f": {tail[0][:160]}" if tail else ""
    if result.timed_out:
        return CheckResult.down(f"check command killed after {request.timeout:g} s")
    if result.returncode == 0:
        return CheckResult.up(f"exit 0{detail}")
    return CheckResult.down(f"exit {result.returncode}{detail}")
