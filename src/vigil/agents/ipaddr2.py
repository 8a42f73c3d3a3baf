"""IPaddr2: the service address without an automatic alias name (IPv4 or IPv6).

heartbeat's `IPaddr2::ip[/bits[/iface[:label][/broadcast]]]`; same start,
stop and status as IPaddr, with the OCF IPaddr2 defaults for announcements
(5 frames rounds, 0.2 s apart) and a label only when one is given.
"""

from __future__ import annotations

from vigil.agents.ipaddr import IPaddr


class IPaddr2(IPaddr):
    arp_count_default = 5
    arp_interval_default = 0.2
    automatic_label = False
