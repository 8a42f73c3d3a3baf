"""Reload as a pure diff: what changed, keyed by identity, with what a reload can apply."""

from vigil.cluster.diff import ConfigDiff, Effect, diff, diff_drbd
from vigil.cluster.loader import ClusterConfig
from vigil.config import authkeys, drbd, extension, hacf, haresources, ldirectord
from vigil.config.resolve import COMMON_SERVICES, StaticResolver

NAMES = StaticResolver(services=COMMON_SERVICES)
HACF = "keepalive 2\ndeadtime 30\nbcast eth0\nnode a b\nauto_failback on\n"
KEYS = "auth 1\n1 sha1 one\n"
RES = "a 10.0.0.1 httpd\nb 10.0.0.2 mysqld\n"
LD = "virtual=10.0.0.1:80\n\treal=10.0.0.11:80 gate\n\treal=10.0.0.12:80 gate\n"


def cluster(hacf_text=HACF, keys=KEYS, res=RES, ld=LD, ext="", drbd_text=None):
    return ClusterConfig(
        hacf.parse(hacf_text), authkeys.parse(keys), haresources.parse(res),
        extension.parse(ext), {"ldirectord.cf": ldirectord.parse(ld, resolver=NAMES)},
        drbd.parse(drbd_text) if drbd_text else None)


def test_same_files_no_changes():
    assert diff(cluster(), cluster()) == ConfigDiff(())
    assert not diff(cluster(), cluster())


def test_reformatting_is_not_a_change():
    same = cluster(hacf_text="# re-ordered\nnode a,b\nbcast eth0\ndeadtime 30\nkeepalive 2000ms\n"
                             "auto_failback yes\n",
                   res="a IPaddr::10.0.0.1 httpd   # web\nb 10.0.0.2 \\\n mysqld\n")
    assert diff(cluster(), same).empty


def test_ha_cf_changes_and_what_needs_a_restart():
    new = cluster(hacf_text=HACF.replace("keepalive 2", "keepalive 1") + "node c\n"
                  "ucast eth1 10.0.0.9\nudpport 700\n")
    result = diff(cluster(), new)
    assert result.summary() == [
        "ha.cf: keepalive changed from 2s to 1s",
        "ha.cf: udpport changed from 694 to 700 (needs a restart)",
        "ha.cf: node c added",
        "ha.cf: medium ucast eth1 10.0.0.9 694 added (needs a restart)",
    ]
    assert [c.key for c in result.restart_needed] == ["udpport", "medium ucast eth1 10.0.0.9 694"]


def test_groups_added_removed_changed_by_key():
    new = cluster(res="b 10.0.0.1 httpd\n10.0.0.3 x\nc 10.0.0.4 nginx\n".replace(
        "10.0.0.3 x\n", ""))
    result = diff(cluster(), new)
    assert result.groups_added == ("IPaddr::10.0.0.4",)
    assert result.groups_removed == ("IPaddr::10.0.0.2",)
    assert result.groups_changed == ("IPaddr::10.0.0.1",)
    [moved] = [c for c in result.for_section("haresources") if c.kind == "changed"]
    assert (moved.old, moved.new) == ("home a", "home b")


def test_authkeys_rotation_masks_secrets():
    new = cluster(keys="auth 2\n1 sha1 one\n2 sha256 two\n")
    result = diff(cluster(), new)
    assert result.summary() == ["authkeys: signing key (auth) changed from 1 to 2",
                                "authkeys: key 2 added"]
    rotated = diff(cluster(), cluster(keys="auth 1\n1 sha1 other\n"))
    assert rotated.summary() == ["authkeys: key 1 secret changed from ******** to ********"]


def test_ldirectord_real_servers_by_identity():
    new_ld = LD.replace("real=10.0.0.12:80 gate", "real=10.0.0.13:80 gate\n\treal=10.0.0.11:80 "
                        "gate 5").replace("\treal=10.0.0.11:80 gate\n", "", 1)
    result = diff(cluster(), cluster(ld=new_ld + "\tscheduler=wlc\n"))
    assert result.summary() == [
        "ldirectord ldirectord.cf: virtual tcp:10.0.0.1:80 scheduler changed from wrr to wlc",
        "ldirectord ldirectord.cf: virtual tcp:10.0.0.1:80 real 10.0.0.12:80 removed",
        "ldirectord ldirectord.cf: virtual tcp:10.0.0.1:80 real 10.0.0.13:80 added",
        "ldirectord ldirectord.cf: virtual tcp:10.0.0.1:80 real 10.0.0.11:80 weight changed "
        "from 1 to 5",
    ]
    assert all(c.effect is Effect.LIVE for c in result.changes)


def test_vigil_cf_sections():
    result = diff(cluster(), cluster(ext="monitor_interval 5\nagent httpd\n  monitor off\n"))
    assert result.summary() == ["vigil.cf: monitor_interval changed from (unset) to 5s",
                                "vigil.cf: agent httpd added"]


def test_drbd_options_hosts_and_secrets():
    base = ("resource r0 { net { shared-secret a; } on a { address 10.0.0.1:7789; "
            "device /dev/drbd0; disk /dev/sdb; meta-disk internal; } }\n")
    changed = base.replace("shared-secret a;", "shared-secret b; protocol A;").replace(
        "10.0.0.1:7789", "10.0.0.1:7790")
    result = diff_drbd(drbd.parse(base), drbd.parse(changed))
    assert [str(c) for c in result] == [
        "drbd: resource r0 net.protocol changed from C to A",
        "drbd: resource r0 net.shared_secret changed from ******** to ********",
        "drbd: resource r0 host a address changed from 10.0.0.1:7789 to 10.0.0.1:7790 (needs a "
        "restart)",
    ]
    assert diff(cluster(), cluster(drbd_text=base)).summary()[0] == "drbd: configuration added"


def test_times_below_a_second_are_shown_in_milliseconds_once():
    new = cluster(hacf_text=HACF.replace("keepalive 2", "keepalive 200ms"))
    assert diff(cluster(hacf_text=HACF.replace("keepalive 2", "keepalive 1500ms")),
                new).summary() == ["ha.cf: keepalive changed from 1500ms to 200ms"]
