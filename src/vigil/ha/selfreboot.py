"""Self-fencing by reboot: heartbeat's answer when this node cannot be trusted.

A resource that will not stop (vigil.cf `failed_stop reboot`) or a `failfast`
program that died leaves the node in a state the peer must not have to guess
about. Heartbeat 3.0.6 then reboots at once (`reboot -nf`: no sync, no
orderly shutdown that could hang on the very resource that failed), so the
peer sees the node die and takes the groups over safely. vigil runs vigil.cf's
`reboot_command` (that same command by default) with the reason in
`VIGIL_REBOOT_REASON`. Should the command return, the node did not reboot: that
is logged as critical and the group stays blocked, as with `failed_stop block`.
"""

from __future__ import annotations

import logging
import os
import shlex

from vigil.log import event, flush_logging
from vigil.subprocesses import run_program

log = logging.getLogger("vigil.ha.reboot")

#: heartbeat's own reboot (cl_reboot: /sbin/reboot -nf)
DEFAULT_REBOOT_COMMAND = "/sbin/reboot -nf"
#: how long the reboot command may take before it has failed
REBOOT_TIMEOUT = 60.0


class SelfReboot:
    """Reboots this node once, whoever asks first; later requests only log."""

    def __init__(self, command: str = DEFAULT_REBOOT_COMMAND, timeout: float = REBOOT_TIMEOUT):
        self.argv = shlex.split(command)
        self.timeout = timeout
        self.requested: str | None = None

    async def reboot(self, reason: str) -> None:
        if self.requested is not None:
            event(log, "node.reboot_pending", logging.CRITICAL, reason=reason,
                  first=self.requested)
            return
        self.requested = reason
        event(log, "node.reboot", logging.CRITICAL, reason=reason,
              command=shlex.join(self.argv))
        flush_logging()  # the reboot may end this process before the log thread writes
        result = await run_program(self.argv, timeout=self.timeout,
                                   env={**os.environ, "VIGIL_REBOOT_REASON": reason})
        event(log, "node.reboot_failed", logging.CRITICAL, reason=reason,
              exit=result.returncode, output=result.output.strip()[:200],
              consequence="the node is still up: its groups stay blocked until an operator "
                          "acts")
