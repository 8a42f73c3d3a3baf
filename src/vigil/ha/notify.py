"""vigil.cf `notify_command`: a program run on cluster events, as heartbeat runs
/etc/ha.d/rc.d hooks and keepalived its notify scripts.

The program is run as `PROGRAM EVENT` with the event's facts in the
environment (`VIGIL_EVENT`, `VIGIL_NODE` = this node, `VIGIL_TARGET` = the node
or group concerned, `VIGIL_<FIELD>` for the rest, and heartbeat's
`HA_CURHOST`). It never holds up the daemon: at most `MAX_RUNNING` run at once,
at most `MAX_QUEUED` wait (more are dropped, and said so), and one that runs
longer than `TIMEOUT` is killed.

`notification` (pure) decides which log events are notified and how they are
named; `Notifier` (the asyncio shell) runs the program.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from vigil.log import event

log = logging.getLogger("vigil.ha")

#: engine and daemon events that are notified, under their own names
PASSED_ON = frozenset({"peer.dead", "peer.alive", "peer.restart", "ping.dead", "ping.alive",
                       "link.dead", "link.up", "fence.result", "group.start_failed",
                       "group.not_released", "takeover.requested"})
#: a finished start or stop of a group, by (action, ok)
ACTION_EVENTS = {("StartGroup", True): "group.started", ("StartGroup", False): "group.start_failed",
                 ("StopGroup", True): "group.stopped", ("StopGroup", False): "group.stop_failed"}
MAX_RUNNING = 4
MAX_QUEUED = 64
TIMEOUT = 60.0
_NAME = re.compile(r"[^A-Z0-9_]")


@dataclass(frozen=True)
class Notification:
    event: str
    env: Mapping[str, str]


def notification(name: str, fields: Mapping[str, object], me: str) -> Notification | None:
    """The notification for log event `name`, or None when it is not one users are told of."""
    if name == "action.done":
        renamed = ACTION_EVENTS.get((str(fields.get("action")), bool(fields.get("ok"))))
        if renamed is None:
            return None
        name = renamed
    elif name not in PASSED_ON:
        return None
    env = {f"VIGIL_{_NAME.sub('_', key.upper())}": str(value)[:1024]
           for key, value in fields.items() if key != "node"}
    target = fields.get("node", fields.get("group", fields.get("target")))
    if target is not None:
        env["VIGIL_TARGET"] = str(target)
    env |= {"VIGIL_EVENT": name, "VIGIL_NODE": me, "HA_CURHOST": me}
    return Notification(name, env)


class Notifier:
    """Runs the notify program for each notification, bounded and in order of arrival."""

    def __init__(self, program: str, me: str):
        self.program = program
        self.me = me
        self._queue: collections.deque[Notification] = collections.deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, name: str, fields: Mapping[str, object]) -> None:
        """Notify of a log event if it is one (call from the event loop's thread)."""
        note = notification(name, fields, self.me)
        if note is None:
            return
        if len(self._queue) >= MAX_QUEUED:
            event(log, "notify.dropped", logging.WARNING, event_name=note.event,
                  reason=f"{MAX_QUEUED} notifications already wait")
            return
        self._queue.append(note)
        self._start_next()

    def _start_next(self) -> None:
        while self._queue and self._running < MAX_RUNNING:
            note = self._queue.popleft()
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._run(note))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running -= 1
        if not task.cancelled():
            self._start_next()

    async def _run(self, note: Notification) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                self.program, note.event, env={**os.environ, **note.env},
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            event(log, "notify.failed", logging.WARNING, event_name=note.event,
                  program=self.program, error=exc.strerror or str(exc))
            return
        try:
            code = await asyncio.wait_for(process.wait(), TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            event(log, "notify.timeout", logging.WARNING, event_name=note.event,
                  program=self.program, seconds=TIMEOUT)
            return
        if code != 0:
            event(log, "notify.failed", logging.WARNING, event_name=note.event,
                  program=self.program, exit=code)

    async def close(self) -> None:
        """Forget what waits; let what runs finish (each is bounded by TIMEOUT)."""
        self._queue.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
