"""The director's /metrics in the lab: the seed's ldirectord.cf, rs1 stops and comes back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from director_lab_support import VIP, http_get, nginx, vigil

from vigil.lab.seed import lab_file
from vigil.testing import wait_until
from vigil.testing.metrics import sample, scrape

pytestmark = pytest.mark.lab

RS1, RS2 = "198.51.100.1", "198.51.100.2"
PORT = 9695
SERVICE = f"tcp:{VIP}:80"


@pytest.fixture(autouse=True)
def userspace_data_path(monkeypatch):
    """The data path every machine has (the kernel ones have tests/lab/dataplane)."""
    monkeypatch.setenv("VIGIL_DIRECTOR_BACKEND", "userspace")


def backend(remote: str) -> dict[str, str]:
    """node_exporter's labels of VIP:80 -> remote:80."""
    return {"local_address": VIP, "local_port": "80", "proxy": "TCP",
            "remote_address": remote, "remote_port": "80"}


def test_a_stopped_real_server_shows_weight_0_failed_checks_and_its_traffic(seed_lab):
    server5 = seed_lab.host("server5")
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    servers = {"rs1": nginx(seed_lab.host("rs1"), "rs1"),
               "rs2": nginx(seed_lab.host("rs2"), "rs2")}
    nginx(server5, "fallback", listen="127.0.0.1:80", name="sorry")
    server5.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
    vigil(server5, "director", "--metrics-address", str(PORT), "start")
    try:
        def scraped() -> str | None:
            return scrape(server5, PORT)

        wait_until(lambda: sample(scraped(), "node_ipvs_backend_weight", **backend(RS1)) == 1
                   and sample(scraped(), "node_ipvs_backend_weight", **backend(RS2)) == 1, 15,
                   lambda: f"both real servers weighted 1 in the metrics\n{scraped()}")
        answers = [http_get(seed_lab) for _ in range(6)]
        assert sorted(answers) == ["rs1"] * 3 + ["rs2"] * 3
        text = scraped()
        assert sample(text, "vigil_director_up") == 1
        assert sample(text, "vigil_director_real_server_connections_total",
                      **backend(RS1)) >= 3
        assert sample(text, "vigil_director_real_server_bytes_total", direction="out",
                      **backend(RS2)) > 0
        assert sample(text, "node_ipvs_connections_total") >= 6
        assert sample(text, "vigil_director_real_server_up", service=SERVICE,
                      real=f"{RS1}:80") == 1
        assert sample(text, "vigil_director_check_duration_seconds_count",
                      real=f"{RS1}:80") >= 1
        failed_before = sample(text, "vigil_director_checks_total", real=f"{RS1}:80",
                               result="failed") or 0

        servers["rs1"].stop()  # quiescent=yes: rs1 stays in the table with weight 0
        wait_until(lambda: sample(scraped(), "node_ipvs_backend_weight", **backend(RS1)) == 0,
                   1 + 3 + 3, lambda: f"rs1 quiesced in the metrics\n{scraped()}")
        text = scraped()
        assert sample(text, "node_ipvs_backend_weight", **backend(RS2)) == 1
        assert sample(text, "vigil_director_real_server_up", service=SERVICE,
                      real=f"{RS1}:80") == 0
        assert sample(text, "vigil_director_real_server_state", service=SERVICE,
                      real=f"{RS1}:80", state="down") == 1
        assert sample(text, "vigil_director_checks_total", real=f"{RS1}:80",
                      result="failed") > failed_before
        assert sample(text, "vigil_director_virtual_service_real_servers", service=SERVICE,
                      weighted="no") == 1

        servers["rs1"] = nginx(seed_lab.host("rs1"), "rs1")
        wait_until(lambda: sample(scraped(), "node_ipvs_backend_weight", **backend(RS1)) == 1,
                   10, lambda: f"rs1 weighted again\n{scraped()}")
    finally:
        vigil(server5, "director", "stop", check=False)
    assert scrape(server5, PORT) is None  # the server went with the daemon
