"""vigil heartbeat's /metrics in the lab: the figures follow a failover as it happens."""

from __future__ import annotations

import pytest

from vigil.testing import wait_until
from vigil.testing.metrics import sample, scrape

pytestmark = pytest.mark.lab

PORT = 9694
GROUP = "IPaddr::198.51.100.100/24/eth0"
S5, S6 = "server5.example.com", "server6.example.com"


def test_a_crash_of_the_active_node_shows_as_a_peer_dead_failover_on_the_survivor(hb):
    hb.extra = ""
    for name in ("server5", "server6"):
        hb.configure(name)
        hb.lab.host(name).write_file("/etc/ha.d/vigil.cf",
                                     f"duplicate_probe off\nmetrics_address {PORT}\n"
                                     "agent IPaddr\n    monitor_interval 500ms\n")
    for name in ("server5", "server6"):
        hb.responder(name)
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    server6 = hb.lab.host("server6")

    def scraped() -> str | None:
        return scrape(server6, PORT)

    wait_until(lambda: sample(scraped(), "vigil_ha_node_up", node=S5) == 1, 10,
               lambda: f"server6 sees server5 up in its metrics\n{scraped()}")
    before = scraped()
    assert sample(before, "vigil_ha_up") == 1
    assert sample(before, "vigil_ha_group_running", group=GROUP, node=S5) == 1
    assert sample(before, "vigil_ha_group_running", group=GROUP, node=S6) == 0
    assert sample(before, "vigil_ha_link_up", node=S5, link="eth1") == 1
    assert sample(before, "vigil_ha_link_last_heard_age_seconds", node=S5, link="eth0") < 1
    assert sample(before, "vigil_ha_failovers_total", group=GROUP) is None
    assert sample(before, "vigil_ha_packets_rejected_total", reason="bad_auth") == 0
    # only loopback: the metrics are not on the lan address
    assert scrape(server6, PORT, address=server6.address("lan")) is None

    # the holder's monitor verdicts are counted as the checks run
    server5 = hb.lab.host("server5")
    wait_until(lambda: (sample(scrape(server5, PORT), "vigil_ha_resource_monitor_results_total",
                               group=GROUP, verdict="healthy") or 0) >= 2, 10,
               lambda: f"server5 counts its monitor checks\n{scrape(server5, PORT)}")
    hb.lab.crash("server5")
    wait_until(lambda: sample(scraped(), "vigil_ha_failovers_total", group=GROUP,
                              cause="peer_dead", result="ok") == 1, 15,
               lambda: f"a peer_dead failover counted on server6\n{scraped()}\n{hb.logs()}")
    after = scraped()
    assert sample(after, "vigil_ha_node_up", node=S5) == 0
    assert sample(after, "vigil_ha_node_status", node=S5, status="dead") == 1
    assert sample(after, "vigil_ha_link_up", node=S5, link="eth1") == 0
    assert sample(after, "vigil_ha_link_last_heard_age_seconds", node=S5, link="eth0") >= 1
    assert sample(after, "vigil_ha_group_running", group=GROUP, node=S6) == 1
    assert sample(after, "vigil_ha_failover_duration_seconds_count", cause="peer_dead") == 1
    seconds = sample(after, "vigil_ha_failover_duration_seconds_sum", cause="peer_dead")
    assert seconds is not None and 0 < seconds < 10
    hb.wait_client("server6")
