"""Properties of every parser: only ConfigError for bad input; render(parse(x)) parses to x."""

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.config import authkeys, drbd, extension, hacf, haresources, ldirectord
from vigil.config.base import ConfigError
from vigil.config.resolve import COMMON_SERVICES, StaticResolver

NAMES = StaticResolver(services=COMMON_SERVICES)
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

PARSERS = {
    "ha.cf": hacf.parse,
    "authkeys": authkeys.parse,
    "haresources": haresources.parse,
    "ldirectord.cf": lambda text: ldirectord.parse(text, resolver=NAMES),
    "drbd": drbd.parse,
    "vigil.cf": extension.parse,
}
ANALYZERS = {
    "ha.cf": hacf.analyze,
    "authkeys": authkeys.analyze,
    "haresources": haresources.analyze,
    "ldirectord.cf": lambda text: ldirectord.analyze(text, resolver=NAMES),
    "drbd": drbd.analyze,
    "vigil.cf": extension.analyze,
}
RENDERERS = {
    "ha.cf": hacf.render,
    "authkeys": authkeys.render,
    "haresources": haresources.render,
    "ldirectord.cf": ldirectord.render,
    "drbd": drbd.render,
    "vigil.cf": extension.render,
}

# Text that looks a bit like config files: their punctuation is overrepresented.
noise = st.text(alphabet=st.sampled_from(list(" \t\n#=:;{}[]\"\\/.,->_ ") + list("abcdeflmnorstuv")
                                         + list("0123456789") + ["\r", "é", "\x00"]),
                max_size=300)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@FAST
@given(text=st.one_of(st.text(max_size=300), noise))
def test_arbitrary_text_only_ever_raises_config_error(kind, text):
    ANALYZERS[kind](text)  # never raises
    with contextlib.suppress(ConfigError):
        PARSERS[kind](text)


def lines(*choices):
    return st.lists(st.one_of(*choices), max_size=14).map(lambda ls: "\n".join(ls) + "\n")


def kv(key, values, sep=" "):
    return st.tuples(st.just(key), st.sampled_from(values)).map(lambda t: t[0] + sep + t[1])


TIMES = ["1", "2", "0.5", "1500ms", "30", "60", "10", "5", "120", "x", "0"]
HACF_TEXT = lines(
    *(kv(k, TIMES) for k in ("keepalive", "deadtime", "warntime", "initdead", "deadping")),
    kv("udpport", ["694", "700", "0"]),
    kv("bcast", ["eth0", "eth1 eth2", "eth0,eth1"]),
    kv("mcast", ["eth0 239.0.0.1 694 1 0", "eth1 225.1.2.3 700 4 1", "eth0 10.0.0.1 694 1 0"]),
    kv("mcast6", ["eth0 ff12::1 694 1 0"]),
    kv("ucast", ["eth0 10.0.0.2", "eth1 peer.example.com", "eth0"]),
    kv("ucast6", ["eth0 2001:db8::2", "eth0 fe80::1%eth0"]),
    kv("serial", ["/dev/ttyS0"]), kv("baud", ["9600", "19200", "1"]),
    kv("node", ["a", "b c", "Server5.Example.Com", "x,y"]),
    kv("ping", ["10.0.0.254", "gw.example.com 10.0.0.253"]),
    kv("ping_group", ["g 10.0.0.1 10.0.0.2", "h 10.1.1.1"]),
    kv("auto_failback", ["on", "off", "legacy", "yes", "maybe"]),
    kv("debug", ["0", "3", "999"]), kv("logfacility", ["local0", "daemon", "bogus"]),
    kv("logfile", ["/var/log/ha-log"]), kv("realtime", ["on", "off"]),
    kv("respawn", ["hacluster /usr/lib/heartbeat/ipfail", "root /bin/true -v", "root rel"]),
    kv("apiauth", ["ipfail uid=hacluster", "ping gid=haclient uid=a,b", "x"]),
    kv("stonith_host", ["* baytech 10.0.0.3 login pw", "node1 rps10 /dev/ttyS1 n 0"]),
    kv("stonith", ["baytech /etc/ha.d/conf/stonith.baytech"]),
    kv("env", ["A=b", "LANG=C", "bad"]), kv("compression", ["zlib", "bz2"]),
    kv("msgfmt", ["classic", "netstring"]), kv("max_rexmit_delay", ["100", "250"]),
    kv("use_logd", ["yes", "no"]), kv("coredumps", ["off"]), kv("hopfudge", ["2"]),
    kv("watchdog", ["/dev/watchdog"]), kv("autojoin", ["none"]), kv("cluster", ["c1"]),
    st.sampled_from(["# comment", "", "   ", "junk word", "crm off"]),
)


@FAST
@given(HACF_TEXT)
def test_hacf_render_round_trip(text):
    check_round_trip("ha.cf", text)


AUTH_TEXT = lines(
    kv("auth", ["1", "2", "15", "x"]),
    st.sampled_from(["1 crc", "2 sha1 secret", "3 md5 Hello!", "15 sha256 k", "4 sha512 a b",
                     "1 sha1", "16 crc", "# 2 sha1 HI!", ""]),
)


@FAST
@given(AUTH_TEXT)
def test_authkeys_render_round_trip(text):
    check_round_trip("authkeys", text)


RESOURCE = st.sampled_from([
    "10.0.0.1", "10.0.0.2/24/eth0", "IPaddr::10.0.0.3/24/eth0/10.0.0.255", "httpd", "mysqld",
    "Filesystem::/dev/drbd0::/srv::ext4", "drbddisk::r0", "ocf:heartbeat:IPaddr2::ip=2001:db8::1",
    "ocf:heartbeat:Dummy::a=1::b=2", "systemd:nginx", "lsb:mariadb", "IPaddr2::2001:db8::5/64",
    "MailTo::root@example.com::subj", "Delay::3", "ldirectord::web.cf", "bad$name", "\\",
])
CONTINUED = " \\\n  "


def _group_line(node, resources, continued):
    return node + " " + (CONTINUED if continued else " ").join(resources) + "\n"


RES_TEXT = st.lists(
    st.tuples(st.sampled_from(["node1", "Node2", "server5.example.com", "#c"]),
              st.lists(RESOURCE, max_size=5), st.booleans()),
    max_size=6,
).map(lambda groups: "".join(_group_line(*g) for g in groups))


@FAST
@given(RES_TEXT)
def test_haresources_render_round_trip(text):
    check_round_trip("haresources", text)


LD_GLOBAL = st.sampled_from([
    "checktimeout=3", "negotiatetimeout=10", "checkinterval=2", "autoreload=yes", "fork=yes",
    "quiescent=yes", "quiescent=no", "cleanstop=no", "fallback=127.0.0.1:80",
    "fallback6=[::1]:80 masq", 'logfile="local0"', 'callback="/bin/true"', "emailalert=a@b.c",
    "emailalertstatus=starting,running", "smtp=mail.example.com", "execute=other.cf",
    "failurecount=3", "maintenancedir=/tmp", "connecttimeout=5", "# comment", "",
])
LD_VIRTUAL_HEAD = st.sampled_from([
    "virtual=10.0.0.1:80", "virtual=10.0.0.1:53", "virtual=www.example.com:http", "virtual=5",
    "virtual6=[2001:db8::1]:443", "virtual=10.0.0.2:3306",
])
LD_VIRTUAL_LINE = st.sampled_from([
    "real=10.0.0.11:80 gate", "real=10.0.0.12 masq 5", 'real=10.0.0.13:80 gate 2 "/x", "y"',
    "real=10.0.0.20->10.0.0.22:80 ipip", "real=10.0.0.14:80 gate l:5 u:10",
    "real6=[2001:db8::2]:443 gate", "fallback=127.0.0.1:80 gate", "service=http",
    "service=dns", "scheduler=wlc", "protocol=udp", "protocol=fwm", "checktype=connect",
    "checktype=4", "checkport=8080", 'request="index.html"', 'receive="ok"', "httpmethod=HEAD",
    "virtualhost=www", 'login="u"', 'passwd="p"', 'database="d"', "persistent=600",
    "netmask=255.255.255.0", "quiescent=no", "checktimeout=2", "emailalertfreq=60",
    "servicename=Web", "comment=a b", "ops=yes", "# c", "checkinterval=5",
])
LD_TEXT = st.lists(
    st.one_of(LD_GLOBAL.map(lambda g: [g]),
              st.tuples(LD_VIRTUAL_HEAD, st.lists(LD_VIRTUAL_LINE, max_size=6)).map(
                  lambda t: [t[0], *("\t" + line for line in t[1])])),
    max_size=6,
).map(lambda blocks: "\n".join(line for block in blocks for line in block) + "\n")


@FAST
@given(LD_TEXT)
def test_ldirectord_render_round_trip(text):
    check_round_trip("ldirectord.cf", text)


def _drbd_option(section):
    samples = {
        "net": ["protocol A", "protocol C", "timeout 90", "ping-timeout 10", "max-buffers 8000",
                "allow-two-primaries", "allow-two-primaries no", "cram-hmac-alg sha1",
                'shared-secret "s e c"', "after-sb-0pri discard-zero-changes",
                "after-sb-1pri consensus", "sndbuf-size 1M", "fencing resource-only",
                "unknown-thing 1 2", "csums-alg md5"],
        "disk": ["resync-rate 10M", "resync-rate 100", "al-extents 3389", "c-plan-ahead 0",
                 "c-fill-target 100s", "c-max-rate 1G", "on-io-error pass_on", "size 4G",
                 "disk-flushes no", "resync-after r1", "cpu-mask 3"],
        "startup": ["wfc-timeout 30", "degr-wfc-timeout 120", "become-primary-on a"],
        "options": ["on-no-data-accessible suspend-io", "cpu-mask ff"],
    }[section]
    return st.lists(st.sampled_from(samples), max_size=4).map(
        lambda opts: f"{section} {{ " + "".join(o + "; " for o in opts) + "}")


DRBD_HOST = st.sampled_from([
    "on a { address 10.0.0.1:7789; device /dev/drbd0; disk /dev/sdb; meta-disk internal; }",
    "on b c { address ipv6 [fd00::2]:7789; volume 0 { device minor 1; disk /dev/sdc; "
    "meta-disk /dev/sdd [2]; } volume 1 { device /dev/drbd4; disk none; meta-disk internal; } }",
    "floating 10.0.0.9:7790 { device /dev/drbd3; disk /dev/sde; meta-disk internal; }",
    "on d { address 10.0.0.4; device /dev/drbd0; disk /dev/sdb; meta-disk internal; node-id 2; }",
])
DRBD_TEXT = st.lists(
    st.tuples(st.sampled_from(["r0", "r1", "data"]),
              st.lists(st.one_of(*(_drbd_option(s) for s in ("net", "disk", "startup",
                                                                "options")),
                                 st.just('handlers { split-brain "/bin/true"; }')),
                       max_size=3),
              st.lists(DRBD_HOST, min_size=1, max_size=3)),
    max_size=3,
).map(lambda rs: "global { usage-count no; }\n" + "".join(
    f"resource {name} {{\n  " + "\n  ".join([*opts, *hosts]) + "\n}\n" for name, opts, hosts in rs))


@FAST
@given(DRBD_TEXT)
def test_drbd_render_round_trip(text):
    check_round_trip("drbd", text)


EXT_TEXT = lines(
    kv("monitor_interval", ["5", "500ms", "x"]), kv("restart_limit", ["0", "2"]),
    kv("on_monitor_failure", ["failover", "ignore"]), kv("failed_stop", ["block"]),
    kv("fence_command", ["/usr/sbin/fence %n --x"]), kv("metrics_address",
                                                        ["127.0.0.1:9694", "off", "[::1]:1"]),
    kv("garp_count", ["3"]), kv("garp_interval", ["100ms"]), kv("takeover_delay", ["2"]),
    kv("agent", ["mysqld", "IPaddr"]), kv("resource", ["10.0.0.1", "IPaddr::10.0.0.2"]),
    kv("  monitor", ["off", "on"]), kv("\tstop_timeout", ["30"]), st.just("# c"),
)


@FAST
@given(EXT_TEXT)
def test_extension_render_round_trip(text):
    check_round_trip("vigil.cf", text)


def check_round_trip(kind, text):
    parsed = ANALYZERS[kind](text)
    if not parsed.ok:
        return
    rendered = RENDERERS[kind](parsed.model)
    again = ANALYZERS[kind](rendered)
    assert again.ok, (rendered, again.errors)
    assert again.model == parsed.model, rendered
