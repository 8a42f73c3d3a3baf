"""The heartbeat status page's volume section, read from real volume daemons.

What the page would show (vigil.ha.localdaemons, asked inside the host as the
heartbeat daemon asks it) follows the volume: Primary/Secondary and UpToDate on
both sides once synced; blocks written while the peer is disconnected show as
out-of-sync bytes; reconnected, the resync brings them back to 0.
"""

from __future__ import annotations

import json
import sys

import pytest

from vigil.testing import wait_until

pytestmark = pytest.mark.lab

ASK = "import json; from vigil.ha import localdaemons; print(json.dumps(localdaemons.volumes()))"


def page_view(pair, host: str) -> dict:
    [volume] = json.loads(pair.host(host).run([sys.executable, "-c", ASK], timeout=30).stdout)
    return volume


def test_the_page_shows_roles_disks_and_what_is_out_of_sync(volume_pair):
    pair = volume_pair
    pair.start_pair()
    view = page_view(pair, "server5")
    assert view["name"] == pair.name
    assert (view["role"], view["peer_role"]) == ("Primary", "Secondary")
    assert (view["disk"], view["peer_disk"]) == ("UpToDate", "UpToDate")
    assert view["connection"] == "Connected" and view["out_of_sync"] == 0
    assert page_view(pair, "server6")["role"] == "Secondary"

    pair.vigil("server6", "disconnect", pair.name)
    wait_until(lambda: page_view(pair, "server5")["connection"] != "Connected", 15,
               "server5's page: the peer gone")
    pair.write_blocks("server5", [10, 11, 12], b"page")
    view = page_view(pair, "server5")
    assert view["out_of_sync"] == pair.status("server5")["out_of_sync"] >= 3 * 4096

    pair.vigil("server6", "connect", pair.name)
    wait_until(lambda: page_view(pair, "server5")["out_of_sync"] == 0
               and page_view(pair, "server5")["peer_disk"] == "UpToDate", 30,
               lambda: f"server5's page after the resync: {page_view(pair, 'server5')}")
