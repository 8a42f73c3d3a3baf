"""ha.cf: heartbeat 3.0.6's syntax, defaults, order rules and start-up checks."""

import gzip
import re
from pathlib import Path

import pytest

from vigil.config import hacf
from vigil.config.base import ConfigErrors, Severity, parse_heartbeat_time
from vigil.config.resolve import StaticResolver
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR
DEBIAN_HACF = Path("/usr/share/doc/heartbeat/ha.cf.gz")

MINIMAL = "bcast eth0\nnode a\nnode b\nauto_failback on\n"


def problems(text, severity=Severity.ERROR):
    parsed = hacf.analyze(text, "ha.cf")
    found = [d for d in parsed.diagnostics if d.severity is severity]
    return [(d.location.line, d.location.column, d.message) for d in found]


def test_seed_file_parses_with_its_values():
    config = hacf.parse((SEED / "ha.cf").read_text(), "ha.cf")
    assert (config.keepalive, config.deadtime, config.warntime, config.initdead) == (2, 30, 10, 60)
    assert config.udpport == 694
    assert config.media == (hacf.Bcast("eth0", 694),)
    assert config.nodes == ("server5.example.com", "server6.example.com")
    assert config.auto_failback is hacf.AutoFailback.ON
    assert [p.name for p in config.ping_nodes] == ["172.25.254.250"]
    assert config.respawn[0].user == "hacluster" and config.respawn[0].is_ipfail
    assert config.apiauth[0].client == "ipfail"
    assert config.apiauth[0].uids == ("hacluster",) and config.apiauth[0].gids == ("haclient",)
    assert hacf.validate(config) == ()


def test_seed_notes_say_which_directives_vigil_ignores():
    notes = problems((SEED / "ha.cf").read_text(), Severity.NOTE)
    assert [(line, msg.split(":")[0]) for line, _, msg in notes] == [
        (12, "ipfail is not started"), (13, "apiauth is accepted and ignored")]


def test_defaults_are_heartbeats():
    config = hacf.parse(MINIMAL)
    assert config.keepalive == 1.0
    assert config.deadtime == 30.0
    assert config.warntime == 15.0  # deadtime / 2
    assert config.initdead == 30.0  # = deadtime when deadtime > 10 s
    assert config.deadping == 30.0  # = deadtime
    assert config.udpport == 694
    assert config.auto_failback is hacf.AutoFailback.ON
    assert config.realtime is True and config.debug == 0
    assert config.compression == "zlib" and config.msgfmt == "classic"
    assert hacf.parse("bcast eth0\nnode a\n").auto_failback is hacf.AutoFailback.LEGACY


@pytest.mark.parametrize(("deadtime", "initdead"), [
    ("30", 30.0), ("11", 11.0), ("10", 20.0), ("6", 12.0), ("5", 12.0), ("4", 12.0),
])
def test_initdead_is_computed_from_deadtime_as_heartbeat_does(deadtime, initdead):
    config = hacf.parse(f"keepalive 1\ndeadtime {deadtime}\n{MINIMAL}")
    assert config.initdead == initdead


@pytest.mark.parametrize(("text", "seconds"), [
    ("2", 2.0), ("1.5", 1.5), ("1500ms", 1.5), ("250ms", 0.25), ("0.1", 0.1),
    ("2000000us", 2.0), ("499us", 0.0), ("1501us", 0.002), (".5", 0.5), ("1500MS", 1.5),
    ("7 ms", 0.007),
])
def test_time_syntax(text, seconds):
    assert parse_heartbeat_time(text) == pytest.approx(seconds)


def test_time_in_a_file():
    config = hacf.parse("keepalive 1500ms\ndeadtime 10.5\n" + MINIMAL)
    assert (config.keepalive, config.deadtime) == (1.5, 10.5)


def test_times_are_rounded_to_milliseconds():
    assert hacf.parse(f"keepalive 1.2345\n{MINIMAL}").keepalive == 1.235


def test_words_are_split_on_blanks_and_commas():
    config = hacf.parse("bcast eth0, eth1\nnode Alpha,beta  gamma\nauto_failback off\n")
    assert config.nodes == ("alpha", "beta", "gamma")  # lower-cased, as heartbeat does
    assert [m.interface for m in config.media] == ["eth0", "eth1"]


def test_comments_and_blank_lines():
    config = hacf.parse("# c\n\n   keepalive 2 # two\n\t\n" + MINIMAL)
    assert config.keepalive == 2.0


def test_udpport_applies_to_media_after_it_and_warns_when_late():
    text = "bcast eth0\nudpport 700\nbcast eth1\nnode a\nauto_failback on\n"
    config = hacf.parse(text)
    assert [m.port for m in config.media] == [694, 700]
    assert config.udpport == 700
    warnings = problems(text, Severity.WARNING)
    assert warnings[0][:2] == (2, 9)
    assert "udpport comes after a medium that uses it (line 1)" in warnings[0][2]


def test_every_medium_form():
    text = (
        "udpport 695\n"
        "bcast eth0 eth1\n"
        "mcast eth2 239.192.0.1 694 1 0\n"
        "mcast6 eth2 ff12::1:2 694 1 0\n"
        "ucast eth3 10.0.0.2\n"
        "ucast eth3 peer.example.com\n"
        "ucast6 eth4 2001:db8::2%eth4\n"
        "baud 38400\n"
        "serial /dev/ttyS0\n"
        "node a\nauto_failback on\n"
    )
    config = hacf.parse(text)
    kinds = [m.kind for m in config.media]
    assert kinds == ["bcast", "bcast", "mcast", "mcast6", "ucast", "ucast", "ucast6", "serial"]
    mcast = config.media[2]
    assert (str(mcast.group), mcast.port, mcast.ttl, mcast.loop) == ("239.192.0.1", 694, 1, 0)
    assert config.media[4].port == 695
    assert config.media[-1] == hacf.Serial("/dev/ttyS0", 38400)
    assert [m.kind for m in config.heartbeat_media] == kinds[:-1]
    warning = problems(text, Severity.WARNING)[0]
    assert warning[0] == 9 and "vigil does not support serial heartbeat links" in warning[2]


def test_serial_only_cannot_run():
    config = hacf.parse("serial /dev/ttyS0\nnode a\nauto_failback on\n")
    found = hacf.validate(config)
    assert [d.message for d in found] == [
        "no usable heartbeat medium: vigil does not support serial links; add a bcast, mcast "
        "or ucast line"]
    assert found[0].location.line == 1


def test_ping_nodes_and_groups():
    config = hacf.parse("ping 10.0.0.254 10.0.0.253\nping_group routers 10.0.1.1 10.0.1.2\n"
                        "ping6 2001:db8::fe\n" + MINIMAL)
    assert [(p.name, p.addresses, p.kind) for p in config.ping_nodes] == [
        ("10.0.0.254", ("10.0.0.254",), "ping"), ("10.0.0.253", ("10.0.0.253",), "ping"),
        ("routers", ("10.0.1.1", "10.0.1.2"), "ping_group"),
        ("2001:db8::fe", ("2001:db8::fe",), "ping6")]


def test_stonith_respawn_env():
    config = hacf.parse(
        "stonith baytech /etc/ha.d/conf/stonith.baytech\n"
        "stonith_host *     baytech 10.0.0.3 mylogin mysecretpassword\n"
        "stonith_host Ken3  rps10 /dev/ttyS1 kathy 0\n"
        "respawn hacluster /usr/lib/heartbeat/ipfail -x 1\n"
        "failfast root /usr/bin/watcher\n"
        "env LANG=C\n" + MINIMAL)
    assert [(d.kind, d.host, d.type, d.params) for d in config.stonith] == [
        ("stonith", "*", "baytech", "/etc/ha.d/conf/stonith.baytech"),
        ("stonith_host", "*", "baytech", "10.0.0.3 mylogin mysecretpassword"),
        ("stonith_host", "ken3", "rps10", "/dev/ttyS1 kathy 0")]
    assert [d.type for d in hacf.stonith_for_host(config, "kathy")] == ["baytech", "baytech"]
    assert [d.type for d in hacf.stonith_for_host(config, "KEN3")] == [
        "baytech", "baytech", "rps10"]
    assert config.respawn[0].command == "/usr/lib/heartbeat/ipfail -x 1"
    assert config.respawn[0].path == "/usr/lib/heartbeat/ipfail"
    assert config.respawn[1].failfast and not config.respawn[1].is_ipfail
    assert dict(config.env) == {"LANG": "C"}


def test_nice_failback_is_translated_with_a_warning():
    config = hacf.parse("nice_failback on\nbcast eth0\nnode a\n")
    assert config.auto_failback is hacf.AutoFailback.OFF
    assert "read as 'auto_failback off'" in problems(
        "nice_failback on\nbcast eth0\nnode a\n", Severity.WARNING)[0][2]


def test_legacy_auto_failback_warns_at_validation():
    config = hacf.parse("bcast eth0\nnode a\nauto_failback legacy\n")
    warnings = [d for d in hacf.validate(config) if d.severity is Severity.WARNING]
    assert warnings[0].location.line == 3
    assert "auto_failback legacy (the default) is deprecated" in warnings[0].message


# Golden errors: file, line, column and message --------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("keepalvie 2\n" + MINIMAL,
     (1, 1, "unknown directive 'keepalvie' (did you mean 'keepalive'?)")),
    ("keepalive 2s\n" + MINIMAL,
     (1, 11, "keepalive: bad time '2s': expected seconds (e.g. 2 or 1.5) or milliseconds "
             "(e.g. 1500ms)")),
    ("keepalive 0\n" + MINIMAL, (1, 11, "keepalive: time '0' must be more than 0s")),
    ("deadtime\n" + MINIMAL,
     (1, 1, "deadtime needs a value (a time (seconds, or e.g. 1500ms))")),
    ("udpport 70000\n" + MINIMAL, (1, 9, "udpport: port 70000 is out of range 1..65535")),
    ("auto_failback maybe\nbcast eth0\nnode a\n",
     (1, 15, "auto_failback: bad value 'maybe': expected on, off or legacy")),
    ("realtime sometimes\n" + MINIMAL,
     (1, 10, "realtime: bad boolean 'sometimes': expected one of on/off, yes/no, "
             "true/false, 1/0")),
    ("debug 300\n" + MINIMAL, (1, 7, "debug: debug level 300 is out of range 0..255")),
    ("mcast eth0 10.0.0.1 694 1 0\n" + MINIMAL,
     (1, 12, "mcast: '10.0.0.1' is not an IPv4 multicast group (224.0.0.0/4; e.g. "
             "239.192.0.1)")),
    ("mcast eth0 239.0.0.1 694 9 0\n" + MINIMAL, (1, 26, "mcast: ttl 9 is out of range 0..4")),
    ("mcast eth0 239.0.0.1 694\n" + MINIMAL,
     (1, 25, "mcast needs dev group port ttl loop")),
    ("ucast eth0\n" + MINIMAL, (1, 11, "ucast needs dev peer-address")),
    ("ucast6 eth0 10.0.0.1\n" + MINIMAL, (1, 13, "ucast6: '10.0.0.1' is not an IPv6 address")),
    ("ucast6 eth0 fe80::1%eth1\n" + MINIMAL,
     (1, 13, "ucast6: scope %eth1 does not match the interface eth0")),
    ("respawn hacluster ipfail\n" + MINIMAL,
     (1, 19, "respawn: 'ipfail' is not a full path name")),
    ("apiauth ipfail\n" + MINIMAL, (1, 9, "apiauth needs uid= or gid=")),
    ("crm on\n" + MINIMAL, (1, 5, "crm on: " + hacf.PACEMAKER_HINT)),
    ("crm respawn\n" + MINIMAL, (1, 5, "crm respawn: " + hacf.PACEMAKER_HINT)),
    ("baud 9600\nbaud 19200\n" + MINIMAL, (2, 1, "baud given more than once (first on line 1)")),
    ("baud 1234\n" + MINIMAL,
     (1, 6, "baud: bad value '1234': expected 9600 | 19200 | 38400 | 57600 | 115200 | "
            "230400 | 460800")),
])
def test_golden_errors(text, expected):
    assert expected in problems(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("keepalive 2\ndeadtime 4\n" + MINIMAL,
     (2, 10, "deadtime (4s) must be more than twice keepalive (2s)")),
    ("deadtime 30\ninitdead 20\n" + MINIMAL,
     (2, 10, "initdead (20s) is smaller than deadtime (30s)")),
    ("keepalive 2\ndeadping 3\n" + MINIMAL,
     (2, 10, "deadping (3s) must be more than twice keepalive (2s)")),
])
def test_golden_timing_errors(text, expected):
    assert expected in problems(text)


def test_timing_warnings():
    warnings = problems("keepalive 1\ndeadtime 5\n" + MINIMAL, Severity.WARNING)
    assert (2, 10, "initdead (12s) may be too small: it should be at least 10s to allow for "
                   "slow network start-up") not in warnings  # 12 s is fine
    warnings = problems("keepalive 1\ndeadtime 5\ninitdead 8\n" + MINIMAL, Severity.WARNING)
    assert warnings[0][0] == 3 and "initdead (8s) may be too small" in warnings[0][2]
    warnings = problems("deadtime 10\nwarntime 12\n" + MINIMAL, Severity.WARNING)
    assert warnings[0][0] == 2 and "warntime (12s) is not below deadtime (10s)" in warnings[0][2]


def test_all_errors_of_a_file_are_reported_at_once():
    text = "keepalive x\nnode a\nfoo 1\nbcast eth0\ndebug -1\n"
    with pytest.raises(ConfigErrors) as caught:
        hacf.parse(text, "/etc/ha.d/ha.cf")
    errors = caught.value.errors
    assert [e.location.line for e in errors] == [1, 3, 5]
    assert str(caught.value).startswith("/etc/ha.d/ha.cf:1:11: error: keepalive: bad time")
    assert str(caught.value).endswith("(and 2 more errors)")


def test_missing_medium_and_nodes_are_start_up_errors():
    config = hacf.parse("keepalive 2\n", "ha.cf")
    assert [d.message for d in hacf.validate(config) if d.is_error] == [
        "no heartbeat medium: add a bcast, mcast or ucast line",
        "no nodes: list each cluster member on a 'node' line (names as `uname -n` prints them)"]


def test_autojoin_conflicts_with_haresources():
    config = hacf.parse("autojoin any\nbcast eth0\nauto_failback on\n")
    messages = [d.message for d in hacf.validate(config)]
    assert any(m.startswith("autojoin any conflicts with haresources") for m in messages)
    assert not any(m.startswith("no nodes") for m in messages)  # autojoin any lists none


def test_this_host_must_be_a_node():
    config = hacf.parse((SEED / "ha.cf").read_text(), "ha.cf")
    assert hacf.validate_for_host(config, "server5.example.com") == ()
    assert hacf.validate_for_host(config, "SERVER6.example.com") == ()
    [error] = hacf.validate_for_host(config, "server7")
    assert error.location.line == 9
    assert error.message == ("this host (server7) is not a node: ha.cf lists "
                             "server5.example.com, server6.example.com; node names must equal "
                             "`uname -n`")


def test_ucast_to_an_own_address_is_dropped_so_one_file_serves_both_nodes():
    config = hacf.parse("ucast eth1 203.0.113.5\nucast eth1 203.0.113.6\n"
                        "ucast6 eth1 2001:db8:0:2::5\nucast eth1 server6\n" + MINIMAL)
    on5 = hacf.media_for_host(config, ["203.0.113.5", "2001:db8:0:2::5", "127.0.0.1"])
    assert [getattr(m, "peer", None) for m in on5] == ["203.0.113.6", "server6", None]
    names = StaticResolver({"server6": ("203.0.113.6",)})
    on6 = hacf.media_for_host(config, ["203.0.113.6"], lambda h: names.addresses(h, 4))
    assert [getattr(m, "peer", None) for m in on6] == [
        "203.0.113.5", "2001:db8:0:2::5", None]


def test_debian_annotated_example_parses_without_error():
    text = gzip.decompress(DEBIAN_HACF.read_bytes()).decode()
    parsed = hacf.analyze(text, str(DEBIAN_HACF))
    assert parsed.errors == ()
    assert parsed.model.logfacility == "local0"
    assert parsed.model.auto_failback is hacf.AutoFailback.ON


def _debian_example_directives():
    text = gzip.decompress(DEBIAN_HACF.read_bytes()).decode()
    placeholders = {"msgfmt  classic/netstring", "use_logd yes/no"}
    for line in text.splitlines():
        m = re.match(r"^#([a-z][a-z0-9_]*)(\s.*)?$", line)
        if m and m.group(1) in hacf.KEYWORDS and line.lstrip("# ").strip() not in placeholders:
            yield line.lstrip("#").strip()


@pytest.mark.parametrize("line", list(_debian_example_directives()))
def test_each_example_directive_of_debians_file_parses(line):
    """Every directive the annotated example shows (commented out) is accepted by vigil."""
    assert problems(line + "\n" + MINIMAL) == []


def test_render_parses_back_to_the_same_model():
    text = ("keepalive 500ms\ndeadtime 5\nudpport 700\nbcast eth0\nucast eth1 10.0.0.2\n"
            "udpport 800\nbcast eth2\nping 10.0.0.254\nping_group r 10.0.0.1 10.0.0.2\n"
            "stonith_host * baytech 10.0.0.3 login pw\nrespawn root /bin/true now\n"
            "apiauth x uid=root,daemon\nenv A=b=c\nlogfacility daemon\ndebug 2\nrealtime off\n"
            "max_rexmit_delay 100\ncompression bz2\nnode a b\nauto_failback off\n")
    config = hacf.parse(text)
    assert hacf.parse(hacf.render(config)) == config


def test_a_third_node_is_an_error_check_reports_at_its_line():
    config = hacf.parse("bcast eth0\nauto_failback on\nnode a b\nnode c\n", "ha.cf")
    errors = [d for d in hacf.validate(config) if d.is_error]
    assert [(d.location.line, d.message) for d in errors] == [
        (4, "3 nodes: vigil runs haresources groups on a pair (two nodes); the daemon refuses "
            "more (vigil.cf's cluster_backend etcd takes any number)")]
    assert [d for d in hacf.validate(config, "etcd") if d.is_error] == []


def test_compression_settings_without_traditional_compression_are_noted_as_without_effect():
    config = hacf.parse(MINIMAL + "compression bz2\ncompression_threshold 1\n", "ha.cf")
    notes = [(d.location.line, d.message) for d in hacf.validate(config)
             if d.severity is Severity.NOTE]
    assert [line for line, _ in notes] == [5, 6]
    assert all("no effect without 'traditional_compression on'" in m for _, m in notes)
    on = hacf.parse(MINIMAL + "compression bz2\ntraditional_compression on\n", "ha.cf")
    assert on.traditional_compression and on.compression == "bz2"
    assert [d for d in hacf.validate(on) if d.severity is Severity.NOTE] == []
