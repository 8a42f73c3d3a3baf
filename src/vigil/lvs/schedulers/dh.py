"""dh: destination hashing (cache clusters: one destination address, one server)."""

from __future__ import annotations

from vigil.lvs.schedulers.base import Flow, address_bytes
from vigil.lvs.schedulers.hashing import SlotScheduler


class DestinationHashing(SlotScheduler):
    name = "dh"

    def flow_bytes(self, flow: Flow) -> bytes:
        return address_bytes(flow.dst)
