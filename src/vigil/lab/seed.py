"""The tutorial's own files, adapted to the lab: addresses mapped, nothing else changed.

The tutorial's machines live in 172.25.254.0/24; its ldirectord.cf example
uses 192.168.0.0/24 for the same director. The lab maps both into
198.51.100.0/24 (VIP .100, real servers .1 and .2, directors .5 and .6, the
ping node .250), so the files keep their meaning line for line.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from vigil.lab.topology import map_seed_address

#: The ldirectord.cf example's own network, and what each address is in the lab.
LDIRECTORD_EXAMPLE = {
    "192.168.0.200": "198.51.100.100",  # the VIP
    "192.168.0.1": "198.51.100.1",  # rs1
    "192.168.0.2": "198.51.100.2",  # rs2
}
#: the tutorial's files, as package data (a checkout or an installed package alike)
SEED_DIR = Path(__file__).with_name("seed_configs")

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
    return resources.files("vigil.lab").joinpath("seed_configs", name).read_text()


def map_address(address: str) -> str:
    return LDIRECTORD_EXAMPLE.get(address) or map_seed_address(address)


def adapt(text: str) -> str:
    """Map every tutorial address into the lab's range; leave every other byte alone."""
    return _IPV4.sub(lambda match: map_address(match.group(1)), text)


def lab_file(name: str) -> str:
    """A tutorial file as the lab hosts get it."""
    return adapt(original(name))


#: what the demo's timeline says about the one line of authkeys it changes
AUTHKEYS_NOTE = ('authkeys: the tutorial\'s "1 crc" becomes "1 sha1 <a random secret>" (crc '
                 "authenticates nothing: any host on the segment could speak for a node)")


def new_secret() -> str:
    """A secret for one demo run (both nodes of a scene share it)."""
    import secrets

    return secrets.token_hex(16)


def with_secret(name: str, text: str, secret: str) -> str:
    """The one change the demo makes beyond addresses: the links authenticate.

    The tutorial's authkeys selects `crc`, which authenticates nothing, and its
    DRBD resource has no shared-secret: on either, any host on the segment can
    speak for a node. The demo uses sha1 with `secret` in both.
    """
    if name == "authkeys":
        return re.sub(r"(?m)^1 crc[ \t]*$", f"1 sha1 {secret}", text)
    if name == "drbd-mysqldata.res":
        return text.replace("  protocol C;\n", "  protocol C;\n  net { cram-hmac-alg sha1; "
                            f'shared-secret "{secret}"; }}\n', 1)
    return text


def demo_file(name: str, secret: str) -> str:
    """A tutorial file as the demo's hosts get it: the lab's addresses and a real secret."""
    return with_secret(name, lab_file(name), secret)
