"""The director's metrics: table, stats and health rows in, node_ipvs_* / vigil_director_* out."""

from __future__ import annotations

from types import SimpleNamespace

from vigil.director.backends.base import Counters, RealStats, ServiceStats
from vigil.director.checkers.base import CheckResult
from vigil.director.metrics import DirectorMetrics, ipvs_labels
from vigil.lvs.table import Protocol, RealKey, RealServer, ServiceKey, Table, VirtualService
from vigil.metrics import exposition

VIP = "198.51.100.100"
WEB = ServiceKey.tcp(VIP, 80)
LABELS = 'local_address="198.51.100.100",local_mark="",local_port="80",proxy="TCP"'


def snapshot(weight_rs2: int = 1, state_rs2: str = "up") -> dict:
    table = Table.of([VirtualService(WEB, "wrr", reals=(
        RealServer("198.51.100.11", 80, 1), RealServer("198.51.100.12", 80, weight_rs2)))])
    stats = {WEB: ServiceStats(
        counters=Counters(conns=7, in_packets=70, out_packets=60, in_bytes=7000, out_bytes=9000),
        reals={RealKey("198.51.100.11", 80): RealStats(
            active=2, inactive=1, counters=Counters(5, 50, 40, 5000, 6000))})}
    health = [{"service": str(WEB), "real": "198.51.100.11:80", "state": "up",
               "maintenance": False, "failures": 0, "message": "ok", "fallback_active": False},
              {"service": str(WEB), "real": "198.51.100.12:80", "state": state_rs2,
               "maintenance": False, "failures": 3 if state_rs2 != "up" else 0,
               "message": "refused", "fallback_active": False}]
    return {"config": "/etc/ha.d/ldirectord.cf", "backend": "nftables", "phase": "running",
            "active": True,
            "syncs": 4, "table": table, "stats": stats, "health": health,
            "announce": {"speaker": "exabgp", "draining": False, "holddown": 0.0, "vips": [
                {"vip": VIP, "prefix": f"{VIP}/32", "announced": True, "cause": "serving"}]}}


def scrape(data: dict) -> str:
    return exposition(DirectorMetrics(lambda: data).registry)


def test_real_servers_carry_node_exporters_ipvs_names_and_labels():
    text = scrape(snapshot())
    rs1 = f'{{{LABELS},remote_address="198.51.100.11",remote_port="80"}}'
    assert f"node_ipvs_backend_weight{rs1} 1.0" in text
    assert f"node_ipvs_backend_connections_active{rs1} 2.0" in text
    assert f"node_ipvs_backend_connections_inactive{rs1} 1.0" in text
    assert f"vigil_director_real_server_connections_total{rs1} 5.0" in text
    assert (f'vigil_director_real_server_bytes_total{{direction="out",{LABELS},'
            'remote_address="198.51.100.11",remote_port="80"} 6000.0') in text
    assert "node_ipvs_connections_total 7.0" in text
    assert "node_ipvs_outgoing_bytes_total 9000.0" in text
    assert ('vigil_director_virtual_service_info{address="198.51.100.100",fwmark="0",port="80",'
            'protocol="tcp",scheduler="wrr",service="tcp:198.51.100.100:80"} 1.0') in text
    assert 'vigil_director_info{backend="nftables",config="/etc/ha.d/ldirectord.cf",' \
           'phase="running"} 1.0' in text
    assert "vigil_director_table_syncs_total 4.0" in text


def test_a_quiesced_real_server_shows_weight_0_and_its_check_state():
    text = scrape(snapshot(weight_rs2=0, state_rs2="down"))
    rs2 = f'{{{LABELS},remote_address="198.51.100.12",remote_port="80"}}'
    assert f"node_ipvs_backend_weight{rs2} 0.0" in text
    assert 'vigil_director_real_server_up{real="198.51.100.12:80",' \
           'service="tcp:198.51.100.100:80"} 0.0' in text
    assert 'vigil_director_real_server_state{real="198.51.100.12:80",' \
           'service="tcp:198.51.100.100:80",state="down"} 1.0' in text
    assert 'vigil_director_real_server_check_failures{real="198.51.100.12:80",' \
           'service="tcp:198.51.100.100:80"} 3.0' in text
    assert 'vigil_director_virtual_service_real_servers{service="tcp:198.51.100.100:80",' \
           'weighted="no"} 1.0' in text


def test_fwmark_services_use_the_mark_label():
    key = ServiceKey(Protocol.FWM, fwmark=5)
    assert ipvs_labels(key, "198.51.100.11", 0) == ["", "0", "5", "FWM", "198.51.100.11", "0"]


def test_checks_are_counted_and_timed():
    metrics = DirectorMetrics(lambda: snapshot())
    target = SimpleNamespace(real=SimpleNamespace(key=RealKey("198.51.100.12", 80)),
                             config=SimpleNamespace(check=SimpleNamespace(checktype="negotiate")))
    metrics.check_done(target, CheckResult.down("refused"), 0.02)  # type: ignore[arg-type]
    metrics.check_done(target, CheckResult.up(), 0.004)  # type: ignore[arg-type]
    text = exposition(metrics.registry)
    assert 'vigil_director_checks_total{check="negotiate",real="198.51.100.12:80",' \
           'result="failed"} 1.0' in text
    assert 'vigil_director_check_duration_seconds_count{check="negotiate",' \
           'real="198.51.100.12:80"} 2.0' in text
    assert 'vigil_director_check_duration_seconds_bucket{check="negotiate",le="0.005",' \
           'real="198.51.100.12:80"} 1.0' in text


def test_a_warm_standby_says_so():
    assert "vigil_director_active 0.0" in scrape({**snapshot(), "active": False})
    assert "vigil_director_active 1.0" in scrape({**snapshot(), "active": True})


def test_announcements_show_only_with_a_speaker():
    assert "vigil_director_vip_announced" not in scrape({**snapshot(), "announce": None})
    announce = {"speaker": "exabgp", "draining": True, "holddown": 0.0, "vips": [
        {"vip": VIP, "prefix": f"{VIP}/32", "announced": False, "cause": "draining"},
        {"vip": "2001:db8::1", "prefix": "2001:db8::1/128", "announced": True,
         "cause": "serving"}]}
    text = scrape({**snapshot(), "announce": announce})
    assert ('vigil_director_vip_announced{cause="draining",speaker="exabgp",'
            'vip="198.51.100.100/32"} 0.0') in text
    assert ('vigil_director_vip_announced{cause="serving",speaker="exabgp",'
            'vip="2001:db8::1/128"} 1.0') in text
    assert "vigil_director_draining 1.0" in text
