"""mh: Maglev hashing of the source; a removed destination moves only its own flows."""

from __future__ import annotations

from vigil.lvs.schedulers.base import Flow
from vigil.lvs.schedulers.hashing import SlotScheduler, source_bytes


class MaglevHashing(SlotScheduler):
    name = "mh"

    def flow_bytes(self, flow: Flow) -> bytes:
        return source_bytes(flow, "mh-port" in self.flags)
