"""The tutorial's own files, adapted to the lab: addresses mapped, nothing else changed.

The tutorial's machines live in 172.25.254.0/24; its ldirectord.cf example
uses 192.168.0.0/24 for the same director. The lab maps both into
198.51.100.0/24 (VIP .100, real servers .1 and .2, directors .5 and .6, the
ping node .250), so the files keep their meaning line for line.
"""

from __future__ import annotations

import re
from importlib import resources

from vigil.lab.topology import map_seed_address

#: The ldirectord.cf example's own network, and what each address is in the lab.
LDIRECTORD_EXAMPLE = {
    "192.168.0.200": "198.51.100.100",  # the VIP
    "192.168.0.1": "198.51.100.1",  # rs1
    "192.168.0.2": "198.51.100.2",  # rs2
}
SEED_FILES = (
    "ha.cf",
    "authkeys",
    "haresources.mysqld",
    "haresources.drbd-mysql",
    "haresources.lvs",
    "ldirectord.cf",
    "drbd-mysqldata.res",
    "realserver.sh",
    "ipvsadm.sh",
)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def original(name: str) -> str:
    """A file exactly as the tutorial shows it."""
    if name not in SEED_FILES:
        raise KeyError(f"the tutorial has no file {name!r}")
    return resources.files("vigil.demo").joinpath("seed_configs", name).read_text()


def map_address(address: str) -> str:
    return LDIRECTORD_EXAMPLE.get(address) or map_seed_address(address)


def adapt(text: str) -> str:
    """Map every tutorial address into the lab's range; leave every other byte alone."""
    return _IPV4.sub(lambda match: map_address(match.group(1)), text)


def lab_file(name: str) -> str:
    """A tutorial file as the lab hosts get it."""
    return adapt(original(name))
