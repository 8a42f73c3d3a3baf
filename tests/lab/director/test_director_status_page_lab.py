"""The heartbeat status page's load-balancer section, read from a real director.

server5 runs the tutorial's director; what the page would show (vigil.ha.localdaemons,
asked inside server5 as the heartbeat daemon asks it) must be the director's own
table and check states: both real servers up with their weights, then rs2's nginx
stops and the page shows it down at weight 0 (quiescent=yes), as `vigil lvs` does.
"""

from __future__ import annotations

import json
import sys

import pytest

from vigil.lvs.table import Protocol, ServiceKey
from vigil.testing import wait_until
from vigil.testing.director_pair import VIP, configure, vigil, vigil_env

pytestmark = pytest.mark.lab

SERVICE = str(ServiceKey(Protocol.TCP, VIP, 80))
ASK = "import json; from vigil.ha import localdaemons; print(json.dumps(localdaemons.directors()))"


def page_view(host) -> list[dict]:
    return json.loads(host.run([sys.executable, "-c", ASK], env=vigil_env(), timeout=30).stdout)


def listed_weights(host) -> dict[str, int]:
    """`vigil lvs list -n`: real server -> weight, for the VIP's service."""
    weights = {}
    for line in vigil(host, "lvs", "list", "-n").stdout.splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "->" and ":" in words[1] and words[1][0].isdigit():
            weights[words[1]] = int(words[3])
    return weights


def reals(view: list[dict]) -> dict[str, dict]:
    [director] = view
    [service] = [s for s in director["services"] if s["service"] == SERVICE]
    return {r["real"]: r for r in service["reals"]}


def test_the_page_shows_the_directors_weights_and_check_states(seed_lab):
    configure(seed_lab)
    server5 = seed_lab.host("server5")
    rs1, rs2 = (f"{seed_lab.host(n).address('lan')}:80" for n in ("rs1", "rs2"))
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    assert page_view(server5) == []  # no director yet: nothing listed, no error
    vigil(server5, "director", "start")
    try:
        wait_until(lambda: {r: v["state"] for r, v in reals(page_view(server5)).items()
                            if r in (rs1, rs2)} == {rs1: "up", rs2: "up"}, 30,
                   lambda: f"both real servers up on the page: {page_view(server5)}")
        view = page_view(server5)
        assert view[0]["role"] == "active" and view[0]["backend"] == "nftables"
        shown = {r: v["weight"] for r, v in reals(view).items() if v["weight"] is not None}
        assert shown == listed_weights(server5) and shown[rs1] == shown[rs2] == 1

        seed_lab.host("rs2").run(["/etc/init.d/nginx", "stop"])
        wait_until(lambda: reals(page_view(server5))[rs2]["state"] == "down", 30,
                   lambda: f"rs2 down on the page: {page_view(server5)}")
        row = reals(page_view(server5))[rs2]
        assert row["weight"] == 0 and listed_weights(server5)[rs2] == 0
        assert reals(page_view(server5))[rs1]["state"] == "up"
    finally:
        vigil(server5, "director", "stop", check=False)
