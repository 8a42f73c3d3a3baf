"""From the config models (vigil.config) to the heartbeat daemon's settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vigil.cluster.loader import ConfigPaths, HostFacts, load
from vigil.config.base import ConfigErrors
from vigil.ha.settings import from_config
from vigil.lab.seed import SEED_DIR
from vigil.membership.codec import Compressor

SEED = SEED_DIR


def write(directory: Path, hacf: str, authkeys: str = "auth 1\n1 sha1 s\n",
          haresources: str = "", vigil_cf: str | None = None) -> ConfigPaths:
    (directory / "ha.cf").write_text(hacf)
    (directory / "authkeys").write_text(authkeys)
    (directory / "authkeys").chmod(0o600)
    (directory / "haresources").write_text(haresources)
    if vigil_cf is not None:
        (directory / "vigil.cf").write_text(vigil_cf)
    return ConfigPaths(ha_dir=str(directory), drbd_conf=str(directory / "drbd.conf"))


BASIC = """keepalive 100ms
deadtime 0.5
initdead 2
bcast eth0
node a.example.com
node b.example.com
"""


def settings_for(paths: ConfigPaths, me: str = "a.example.com",
                 addresses: frozenset[str] = frozenset()):
    return from_config(load(paths, HostFacts(me)), me, addresses, paths.ha_dir)


def test_the_seeds_files(tmp_path):
    for name in ("ha.cf", "authkeys"):
        shutil.copy(SEED / name, tmp_path / name)
    (tmp_path / "authkeys").chmod(0o600)
    (tmp_path / "haresources").write_text(
        "server5.example.com IPaddr::172.25.254.100/24/eth0 Delay::1\n")
    settings = settings_for(ConfigPaths(ha_dir=str(tmp_path)), "server5.example.com")
    assert settings.timings.keepalive == 2 and settings.timings.deadtime == 30
    assert settings.timings.warn == 10 and settings.timings.initial == 60
    assert [str(m) for m in settings.media] == ["bcast eth0"]
    assert settings.nodes == ("server5.example.com", "server6.example.com")
    assert settings.auto_failback == "on"
    assert [p.name for p in settings.pings] == ["172.25.254.250"]
    assert settings.groups[0].key == "IPaddr::172.25.254.100/24/eth0"
    assert settings.keys.signer.method.name == "crc"
    config = settings.node_config()
    assert config.peer == "server6.example.com" and config.ping_nodes == ("172.25.254.250",)


def test_every_medium_and_the_ucast_line_to_this_host_is_dropped(tmp_path):
    paths = write(tmp_path, BASIC + """udpport 7694
bcast eth1
mcast eth0 239.192.0.1 7695 1 0
mcast6 eth1 ff12::1:2 7696 1 0
ucast eth1 203.0.113.5
ucast eth1 203.0.113.6
ucast6 eth1 2001:db8:0:2::6
""")
    settings = settings_for(paths, addresses=frozenset({"203.0.113.5", "2001:db8:0:2::5"}))
    assert [str(m) for m in settings.media] == [
        "bcast eth0", "bcast eth1 7694", "mcast eth0 239.192.0.1 7695",
        "mcast6 eth1 ff12::1:2 7696", "ucast eth1 203.0.113.6 7694",
        "ucast6 eth1 2001:db8:0:2::6 7694"]
    assert settings.node_config().links == ("eth0", "eth1")


def test_groups_keys_and_auto_failback(tmp_path):
    paths = write(tmp_path, BASIC + "auto_failback off\n",
                  authkeys="auth 2\n1 md5 one\n2 sha256 two\n",
                  haresources="a.example.com 198.51.100.100/24/eth0 Delay::1\n"
                              "b.example.com IPaddr2::198.51.100.101\n")
    settings = settings_for(paths)
    assert [g.resources for g in settings.groups] == [
        ("IPaddr::198.51.100.100/24/eth0", "Delay::1"), ("IPaddr2::198.51.100.101",)]
    assert [g.home for g in settings.groups] == ["a.example.com", "b.example.com"]
    assert settings.auto_failback == "off"
    assert settings.keys.sign_with == 2 and set(settings.keys.keys) == {1, 2}
    assert settings.keys.signer.method.name == "sha256"


def test_fencing_comes_from_stonith_lines_and_vigil_cf(tmp_path):
    paths = write(tmp_path, BASIC + "stonith_host * external/ssh b.example.com\n",
                  vigil_cf="fence_command /usr/local/sbin/fence %n\nfence_timeout 30\n"
                           "takeover_delay 200ms\n")
    settings = settings_for(paths)
    assert settings.fencing and settings.fence_command == "/usr/local/sbin/fence %n"
    assert settings.fence_timeout == 30 and settings.takeover_delay == 0.2
    assert settings.stonith_hosts[0].device == "external/ssh"
    assert settings.node_config().fencing and settings.node_config().takeover_delay == 0.2
    paths = write(tmp_path, BASIC + "stonith_host * external/ssh b.example.com\n",
                  vigil_cf="fence_before_takeover off\n")
    assert not settings_for(paths).fencing


def test_a_broken_configuration_is_refused_with_file_and_line(tmp_path):
    paths = write(tmp_path, BASIC + "deadtime soon\n")
    with pytest.raises(ConfigErrors) as caught:
        settings_for(paths)
    assert str(caught.value.location).startswith(f"{tmp_path}/ha.cf:")


def test_stonith_with_a_config_file_reads_the_file_and_stonith_host_passes_parameters(
        tmp_path):
    paths = write(tmp_path, BASIC + "stonith baytech /etc/ha.d/conf/stonith.baytech\n"
                  "stonith_host * external/ssh b.example.com\n")
    by_device = {d.device: d for d in settings_for(paths).stonith_hosts}
    # heartbeat: `stonith` hands the file to the plugin (stonith -F), `stonith_host`
    # hands it the parameters themselves (stonith -p)
    assert by_device["baytech"].command("b.example.com") == [
        "stonith", "-t", "baytech", "-F", "/etc/ha.d/conf/stonith.baytech",
        "-T", "reset", "b.example.com"]
    assert by_device["external/ssh"].command("b.example.com") == [
        "stonith", "-t", "external/ssh", "-p", "b.example.com", "-T", "reset", "b.example.com"]


def test_garp_refresh_reaches_the_failover_core(tmp_path):
    paths = write(tmp_path, BASIC, vigil_cf="garp_refresh 30\n")
    settings = settings_for(paths)
    assert settings.garp_refresh == 30.0
    assert settings.node_config().failover_settings().garp_refresh == 30.0
    (tmp_path / "vigil.cf").unlink()
    assert settings_for(write(tmp_path, BASIC)).node_config().garp_refresh == 0.0


def test_the_engine_compresses_only_with_traditional_compression_on(tmp_path):
    assert settings_for(write(tmp_path, BASIC + "compression bz2\n")).compressor is None
    settings = settings_for(write(tmp_path, BASIC + "traditional_compression on\n"
                                  "compression bz2\ncompression_threshold 3\n"))
    assert settings.compressor == Compressor("bz2", 3 * 1024)
    assert settings.node_config().compressor == settings.compressor
    default = settings_for(write(tmp_path, BASIC + "traditional_compression on\n"))
    assert default.compressor == Compressor("zlib", 2 * 1024)  # heartbeat's defaults
