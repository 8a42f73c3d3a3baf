"""The built-in agents by haresources name (one module each)."""

from __future__ import annotations

from vigil.agents.base import Agent
from vigil.agents.delay import Delay
from vigil.agents.drbddisk import DrbdDisk
from vigil.agents.filesystem import Filesystem
from vigil.agents.ipaddr import IPaddr
from vigil.agents.ipaddr2 import IPaddr2
from vigil.agents.ipsrcaddr import IPsrcaddr
from vigil.agents.ldirectord import Ldirectord
from vigil.agents.mailto import MailTo
from vigil.agents.sendarp import SendArp

AGENTS: dict[str, type[Agent]] = {
    "IPaddr": IPaddr,
    "IPaddr2": IPaddr2,
    "SendArp": SendArp,
    "IPsrcaddr": IPsrcaddr,
    "Delay": Delay,
    "MailTo": MailTo,
    "Filesystem": Filesystem,
    "drbddisk": DrbdDisk,
    "ldirectord": Ldirectord,
}

#: Agents whose single argument may itself contain "::" (IPv6 addresses).
ADDRESS_AGENTS = frozenset({"IPaddr", "IPaddr2", "SendArp", "IPsrcaddr"})
