"""Reading /etc/ha.d into the daemon's settings (the interim reader)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vigil.errors import ConfigError
from vigil.ha.settings import parse_time, read_authkeys, read_settings

SEED = Path("/work/shared/seed/configs")


def write(directory: Path, hacf: str, authkeys: str = "auth 1\n1 sha1 s\n",
          haresources: str | None = None) -> Path:
    (directory / "ha.cf").write_text(hacf)
    (directory / "authkeys").write_text(authkeys)
    (directory / "authkeys").chmod(0o600)
    if haresources is not None:
        (directory / "haresources").write_text(haresources)
    return directory


BASIC = """keepalive 100ms
deadtime 0.5
bcast eth0
node a.example.com
node B.example.com
"""


def no_addresses() -> set[str]:
    return set()


@pytest.mark.parametrize(("text", "seconds"), [
    ("2", 2.0), ("0.5", 0.5), ("1500ms", 1.5), ("1500MS", 1.5), ("100000us", 0.1),
    ("501us", 0.001), ("499us", 0.0), ("10ms", 0.01)])
def test_time_values_follow_heartbeat(text, seconds):
    assert parse_time(text) == seconds


def test_the_seeds_files_are_read(tmp_path):
    if not SEED.is_dir():
        pytest.skip(f"the seed configs are not on this machine ({SEED})")
    for name in ("ha.cf", "authkeys"):
        shutil.copy(SEED / name, tmp_path / name)
    (tmp_path / "authkeys").chmod(0o600)
    shutil.copy(SEED / "haresources.lvs", tmp_path / "haresources")
    settings = read_settings(tmp_path, me="server5.example.com", addresses=no_addresses)
    assert settings.timings.keepalive == 2 and settings.timings.deadtime == 30
    assert settings.timings.warn == 10 and settings.timings.initial == 60
    assert [str(m) for m in settings.media] == ["bcast eth0"]
    assert settings.nodes == ("server5.example.com", "server6.example.com")
    assert settings.auto_failback == "on"
    assert [p.name for p in settings.pings] == ["172.25.254.250"]
    assert settings.groups[0].key == "IPaddr::172.25.254.100/24/eth0"
    assert settings.groups[0].resources[1:] == ("ldirectord", "httpd")
    assert set(settings.ignored) == {"respawn", "apiauth"}
    assert settings.keys.signer.method.name == "crc"


def test_all_media_and_a_ucast_line_pointing_at_this_host_is_skipped(tmp_path):
    write(tmp_path, BASIC + """udpport 7694
bcast eth1
mcast eth0 239.192.0.1 7695 1 0
mcast6 eth1 ff12::1:2 7696 1 0
ucast eth1 203.0.113.5
ucast eth1 203.0.113.6
ucast6 eth1 2001:db8:0:2::6
""")
    settings = read_settings(tmp_path, me="a.example.com",
                             addresses=lambda: {"203.0.113.5", "2001:db8:0:2::5"})
    assert [str(m) for m in settings.media] == [
        "bcast eth0", "bcast eth1 7694", "mcast eth0 239.192.0.1 7695",
        "mcast6 eth1 ff12::1:2 7696", "ucast eth1 203.0.113.6 7694",
        "ucast6 eth1 2001:db8:0:2::6 7694"]
    assert settings.node_config().links == ("eth0", "eth1")


def test_errors_name_the_file_and_line(tmp_path):
    write(tmp_path, BASIC + "deadtime soon\n")
    with pytest.raises(ConfigError) as caught:
        read_settings(tmp_path, me="a.example.com", addresses=no_addresses)
    assert str(caught.value).startswith(f"{tmp_path}/ha.cf:6: error: deadtime")
    write(tmp_path, BASIC + "frobnicate yes\n")
    with pytest.raises(ConfigError, match=r"ha.cf:6: error: unknown directive 'frobnicate'"):
        read_settings(tmp_path, me="a.example.com", addresses=no_addresses)


def test_cross_field_rules_and_missing_pieces(tmp_path):
    write(tmp_path, "keepalive 1\ndeadtime 2\nbcast eth0\nnode a.example.com\n")
    with pytest.raises(ConfigError, match="more than twice keepalive"):
        read_settings(tmp_path, me="a.example.com", addresses=no_addresses)
    write(tmp_path, "node a.example.com\n")
    with pytest.raises(ConfigError, match="no communication media"):
        read_settings(tmp_path, me="a.example.com", addresses=no_addresses)
    write(tmp_path, BASIC)
    with pytest.raises(ConfigError, match=r"this node \(c\.example\.com"):
        read_settings(tmp_path, me="c.example.com", addresses=no_addresses)
    write(tmp_path, BASIC + "crm respawn\n")
    with pytest.raises(ConfigError, match="not Pacemaker"):
        read_settings(tmp_path, me="a.example.com", addresses=no_addresses)


def test_authkeys_must_be_private_and_name_its_signing_key(tmp_path):
    path = tmp_path / "authkeys"
    path.write_text("auth 2\n1 md5 one\n2 sha1 two\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_authkeys(path)
    path.chmod(0o600)
    keys = read_authkeys(path)
    assert keys.sign_with == 2 and set(keys.keys) == {1, 2}
    path.write_text("auth 3\n1 sha1 one\n")
    with pytest.raises(ConfigError, match="auth 3 names no key"):
        read_authkeys(path)
    path.write_text("auth 1\n1 sha1\n")
    with pytest.raises(ConfigError, match="needs a secret"):
        read_authkeys(path)


def test_haresources_lines_joins_and_bare_addresses(tmp_path):
    write(tmp_path, BASIC, haresources="""# comment
a.example.com 198.51.100.100/24/eth0 \\
    nginx
B.example.com IPaddr2::198.51.100.101 Delay::1::1
""")
    settings = read_settings(tmp_path, me="a.example.com", addresses=no_addresses)
    assert [g.resources for g in settings.groups] == [
        ("IPaddr::198.51.100.100/24/eth0", "nginx"),
        ("IPaddr2::198.51.100.101", "Delay::1::1")]
    assert [g.home for g in settings.groups] == ["a.example.com", "b.example.com"]
    (tmp_path / "haresources").write_text("c.example.com nginx\n")
    with pytest.raises(ConfigError, match=r"haresources:1: error: node c\.example\.com"):
        read_settings(tmp_path, me="a.example.com", addresses=no_addresses)


def test_vigil_extension_file_configures_fencing(tmp_path):
    write(tmp_path, BASIC + "stonith_host * external/ssh a b\n")
    (tmp_path / "vigil.cf").write_text("fence_command /usr/local/bin/fence %n\n"
                                       "fence_policy ignore\nfence_timeout 30\n")
    settings = read_settings(tmp_path, me="a.example.com", addresses=no_addresses)
    assert settings.fencing and settings.fence_policy == "ignore"
    assert settings.fence_command == "/usr/local/bin/fence %n"
    assert settings.fence_timeout == 30
    assert settings.stonith_hosts[0].device == "external/ssh"
    assert settings.node_config().fencing
