"""`vigil check` on real hosts: their own `uname -n`, interfaces and addresses."""

import sys

import pytest

pytestmark = pytest.mark.lab

HA_CF = """\
keepalive 1
deadtime 10
initdead 20
udpport 694
{media}
auto_failback on
node server5.example.com
node server6.example.com
"""
AUTHKEYS = "auth 1\n1 sha1 lab-secret\n"
HARESOURCES = "server5.example.com IPaddr2::198.51.100.100/24/eth0\n"


def check(host, media):
    host.write_file("/etc/ha.d/ha.cf", HA_CF.format(media=media))
    host.write_file("/etc/ha.d/authkeys", AUTHKEYS, mode=0o600)
    host.write_file("/etc/ha.d/haresources", HARESOURCES)
    return host.run([sys.executable, "-m", "vigil", "check", "-q"], check=False)


def test_one_ha_cf_with_a_ucast_to_each_node_serves_both(pair_lab):
    media = "ucast eth1 203.0.113.5\nucast eth1 203.0.113.6"
    for name in ("server5", "server6"):
        done = check(pair_lab.host(name), media)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().endswith(f"as {name}.example.com)")


def test_a_ucast_only_to_itself_leaves_no_medium_on_that_node(pair_lab):
    media = "ucast eth1 203.0.113.5"
    on5 = check(pair_lab.host("server5"), media)
    assert on5.returncode == 1
    assert "error: every heartbeat medium is a ucast to this host's own address" in on5.stdout
    assert check(pair_lab.host("server6"), media).returncode == 0


def test_interfaces_are_those_of_the_host(pair_lab):
    done = check(pair_lab.host("server5"), "bcast eth1 eth7")
    assert done.returncode == 1
    assert "/etc/ha.d/ha.cf:5:12: error: bcast: interface eth7 does not exist on this host" in \
        done.stdout
