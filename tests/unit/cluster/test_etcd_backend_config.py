"""vigil.cf's cluster_backend etcd as `vigil check` and the daemon read it: the settings
taken together, and ha.cf judged by the backend's rules (any number of nodes, no media)."""

from __future__ import annotations

import os

import pytest

from vigil.cluster import loader
from vigil.cluster.lease import LeaseSettings
from vigil.cluster.loader import ConfigPaths, HostFacts
from vigil.config import extension
from vigil.config.base import Severity
from vigil.ha.etcd_daemon import lease_settings
from vigil.ha.settings import read_settings

THREE = "node server5.example.com server6.example.com server7.example.com\nauto_failback on\n"
ETCD = "cluster_backend etcd\netcd_endpoints 198.51.100.5:2379, http://198.51.100.6\n"


def messages(text: str) -> list[tuple[str, int, str]]:
    return [(d.severity.value, d.location.line, d.message)
            for d in extension.analyze(text, "vigil.cf").diagnostics]


def test_the_endpoints_are_normalised_and_the_lease_read():
    config = extension.parse(ETCD + "lease_ttl 4\nlease_margin 1500ms\netcd_prefix /web\n")
    assert config.etcd_endpoints == "http://198.51.100.5:2379,http://198.51.100.6:2379"
    assert extension.etcd_endpoint_list(config.etcd_endpoints) == (
        "http://198.51.100.5:2379", "http://198.51.100.6:2379")
    settings = lease_settings(config)
    assert (settings.ttl, settings.margin, settings.poll_every) == (4.0, 1.5, 0.5)
    assert extension.parse(extension.render(config)) == config


@pytest.mark.parametrize("text, expected", [
    ("cluster_backend etcd\n", (1, "cluster_backend etcd needs etcd_endpoints")),
    (ETCD + "lease_ttl 3\nlease_margin 2\n", (4, "leaves no second try")),
    (ETCD + "lease_ttl 4\nlease_margin 5\n", (4, "must lie inside the lease TTL")),
    (ETCD + "lease_ttl 1\n", (3, "must be at least 2s")),
    (ETCD + "lease_ttl 400\n", (3, "must lie from 2s to 300s")),
    ("cluster_backend etcd\netcd_endpoints https://198.51.100.5\n",
     (2, "https is not supported")),
    ("cluster_backend raft\n", (1, "cluster_backend")),
])
def test_a_wrong_etcd_setting_is_an_error_naming_its_line(text, expected):
    line, words = expected
    errors = [(at, said) for severity, at, said in messages(text) if severity == "error"]
    assert any(at == line and words in said for at, said in errors), errors


def test_etcd_settings_without_the_backend_and_fencing_with_it_are_said_to_be_unused():
    assert ("warning", 1, "lease_ttl is not used: cluster_backend is heartbeat") in \
        messages("lease_ttl 5\n")
    said = messages(ETCD + "fence_command /bin/true %n\n")
    assert any(severity == "warning" and at == 3 and "fence_command is not used" in m
               for severity, at, m in said)


def write_dir(tmp_path, hacf: str, vigil_cf: str):
    d = tmp_path / "ha.d"
    d.mkdir()
    (d / "ha.cf").write_text(hacf)
    (d / "authkeys").write_text("auth 1\n1 sha1 a-secret\n")
    os.chmod(d / "authkeys", 0o600)
    (d / "haresources").write_text("server5.example.com 198.51.100.100/24/eth0\n")
    (d / "vigil.cf").write_text(vigil_cf)
    return d


def test_three_nodes_without_media_check_clean_with_the_etcd_backend(tmp_path):
    d = write_dir(tmp_path, THREE, ETCD)
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "no-drbd.conf")),
                          HostFacts("server6.example.com"))
    assert [d.message for d in report.errors] == []
    settings = read_settings(d, me="server6.example.com")
    assert len(settings.nodes) == 3 and settings.media == ()


def test_without_the_etcd_backend_three_nodes_and_no_media_are_errors(tmp_path):
    d = write_dir(tmp_path, THREE, "")
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "no-drbd.conf")),
                          HostFacts("server6.example.com"))
    errors = " | ".join(d.message for d in report.errors)
    assert "no heartbeat medium" in errors and "cluster_backend etcd takes any number" in errors


def test_what_heartbeat_alone_uses_is_said_unused_with_the_etcd_backend(tmp_path):
    d = write_dir(tmp_path, THREE + "bcast eth0\nping 198.51.100.1\ndeadtime 5\n", ETCD)
    report = loader.check(ConfigPaths(str(d), str(tmp_path / "no-drbd.conf")),
                          HostFacts("server6.example.com"))
    said = [(d.severity, d.message) for d in report.diagnostics]
    assert any(s is Severity.NOTE and "heartbeat media are not used" in m for s, m in said)
    assert any(s is Severity.WARNING and "deadtime" in m and "ping" not in m
               for s, m in said), said


def test_the_watchdog_resets_a_hung_node_before_its_lease_can_end():
    from vigil.ha.etcd_daemon import watchdog_seconds

    assert watchdog_seconds(LeaseSettings(ttl=10, margin=3)) == 6
    assert watchdog_seconds(LeaseSettings(ttl=4, margin=1.5)) == 1
    for ttl, margin in ((10, 3), (30, 5), (4, 1.5), (2, 0.5)):
        assert watchdog_seconds(LeaseSettings(ttl=ttl, margin=margin)) < ttl - margin
