"""The last events of interest, kept in a bounded ring for the status page.

The daemon offers every event it logs (`offer`) from whichever thread logs it:
the heartbeat thread (peer.dead, link.up, ...), the main loop (a finished group
start or stop, fence results, configuration changes). Only the events an
operator follows are kept, the last `size` of them, each with the wall-clock
time it happened and only the fields that are safe to show: a fence result
keeps the node, the agent and whether it worked, never the command line or its
output (either may carry a password), a configuration change keeps what changed,
never the values.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from vigil.config.base import mask_secrets
from vigil.ha.notify import ACTION_EVENTS

#: how many events the ring keeps
SIZE = 100
#: longest text a field keeps
FIELD_LIMIT = 200
#: the events kept, each with the fields it may show
KEPT: Mapping[str, tuple[str, ...]] = {
    "heartbeat.ready": ("version",),
    "peer.dead": ("node", "silent", "deadtime"),
    "peer.alive": ("node", "status", "link"),
    "peer.restart": ("node",),
    "ping.dead": ("node",),
    "ping.alive": ("node",),
    "link.dead": ("node", "link", "silent"),
    "link.up": ("node", "link"),
    "takeover.requested": ("node", "groups"),
    "ha.decision": ("reason",),
    "group.started": ("target", "seconds"),
    "group.start_failed": ("target", "group", "seconds"),
    "group.stopped": ("target", "seconds"),
    "group.stop_failed": ("target", "seconds"),
    "group.not_released": ("group",),
    "fence.result": ("node", "agent", "fenced", "returncode", "timed_out"),
    "config.reloaded": ("changed",),
    "config.changed": ("section", "what"),
    "config.reload_failed": (),
    "config.restart_needed": ("setting",),
}


class Timeline:
    """A thread-safe ring of the last `size` kept events, oldest first."""

    def __init__(self, size: int = SIZE, clock: Callable[[], float] = time.time):
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self._lock = threading.Lock()
        self._clock = clock
        self._count = 0

    def offer(self, name: str, fields: Mapping[str, object]) -> bool:
        """Keep event `name` if it is one of interest (a finished group action is kept
        under its notification name, `group.started` ...); True when kept."""
        if name == "action.done":
            renamed = ACTION_EVENTS.get((str(fields.get("action")), bool(fields.get("ok"))))
            if renamed is None:
                return False
            name = renamed
        allowed = KEPT.get(name)
        if allowed is None:
            return False
        shown = {key: mask_secrets(str(fields[key]))[:FIELD_LIMIT]
                 for key in allowed if key in fields}
        with self._lock:
            self._count += 1
            self._events.append({"id": self._count, "at": round(self._clock(), 3),
                                 "event": name, "fields": shown})
        return True

    def events(self) -> list[dict[str, Any]]:
        """The kept events, oldest first (copies: the caller may keep them)."""
        with self._lock:
            return [{**entry, "fields": dict(entry["fields"])} for entry in self._events]


__all__ = ["KEPT", "SIZE", "Timeline"]
