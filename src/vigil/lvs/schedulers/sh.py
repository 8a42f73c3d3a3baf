"""sh: source hashing: a client address always reaches the same destination."""

from __future__ import annotations

from vigil.lvs.schedulers.base import Flow
from vigil.lvs.schedulers.hashing import SlotScheduler, source_bytes


class SourceHashing(SlotScheduler):
    name = "sh"

    def flow_bytes(self, flow: Flow) -> bytes:
        return source_bytes(flow, "sh-port" in self.flags)
