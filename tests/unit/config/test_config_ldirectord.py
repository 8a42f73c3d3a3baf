"""ldirectord.cf: ldirectord 4.12's directives, defaults (quiescent=no), real= forms and errors."""

import re
from pathlib import Path

import pytest

from vigil.config import ldirectord as ld
from vigil.config.ldirectord import CheckType, Forwarding
from vigil.config.resolve import COMMON_SERVICES, StaticResolver
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR / "ldirectord.cf"
DEBIAN = Path("/usr/share/doc/ldirectord/examples/ldirectord.cf")
NAMES = StaticResolver(
    hosts={"sql01": ("10.0.0.11",), "sql03": ("10.0.0.13",), "www.example.com": ("10.0.0.80",),
           "v6.example.com": ("2001:db8::80",)},
    services=COMMON_SERVICES)


def analyze(text):
    return ld.analyze(text, "ldirectord.cf", NAMES)


def parse(text):
    return ld.parse(text, "ldirectord.cf", NAMES)


def errors(text):
    return [(d.location.line, d.location.column, d.message) for d in analyze(text).errors]


def test_seed_file():
    config = ld.parse(SEED.read_text(), str(SEED), NAMES)
    assert (config.checktimeout, config.checkinterval, config.autoreload) == (3, 1, True)
    assert config.quiescent is True
    [vs] = config.virtuals
    assert (vs.address, vs.port, vs.protocol, vs.service) == ("192.168.0.200", 80, "tcp", "http")
    assert vs.scheduler == "rr" and vs.checktype is CheckType.NEGOTIATE and vs.checkport == 80
    assert [(r.address, r.port, r.forwarding, r.weight) for r in vs.reals] == [
        ("192.168.0.1", 80, Forwarding.GATE, 1), ("192.168.0.2", 80, Forwarding.GATE, 1)]
    assert vs.fallback == ld.Fallback("127.0.0.1", 80, Forwarding.GATE)
    # inherited from the globals, with ldirectord's precedence
    assert (vs.checktimeout, vs.negotiatetimeout, vs.quiescent) == (3, 3, True)
    assert vs.ident == "tcp:192.168.0.200:80"


def test_defaults_follow_the_code_quiescent_is_no():
    config = parse("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate\n")
    assert config.quiescent is False and config.virtuals[0].quiescent is False
    vs = config.virtuals[0]
    assert (vs.checktimeout, vs.negotiatetimeout, vs.checkinterval) == (5, 30, 10)
    assert (vs.scheduler, vs.checktype, vs.request, vs.receive) == (
        "wrr", CheckType.NEGOTIATE, "/", "")
    assert vs.failurecount == 1 and vs.checkcount == 1 and vs.cleanstop is True
    assert config.logfile == "/var/log/ldirectord.log" and config.fork is False


def test_timeouts_default_to_each_other():
    assert parse("negotiatetimeout=7\nvirtual=10.0.0.1:80\n").virtuals[0].checktimeout == 7
    vs = parse("checktimeout=4\nvirtual=10.0.0.1:80\n\tnegotiatetimeout=9\n").virtuals[0]
    assert (vs.checktimeout, vs.negotiatetimeout) == (9, 9)  # the virtual's own value first


def test_debian_example_parses_without_error():
    parsed = ld.analyze(DEBIAN.read_text(), str(DEBIAN), NAMES)
    assert parsed.errors == ()
    [vs] = parsed.model.virtuals
    assert vs.request == "/index.html" and vs.receive == "Test Page"
    assert vs.virtualhost == "www.x.y.z" and vs.servicename == "Web Site"
    assert parsed.model.quiescent is False


def _example_blocks():
    text = DEBIAN.read_text()
    blocks, current = [], None
    for line in text.splitlines():
        if re.match(r"^#\s*virtual6?\s*=", line):
            current = [line[1:].strip()]
            blocks.append(current)
        elif current is not None and line.startswith("#\t"):
            current.append("\t" + line[2:])
        else:
            current = None
    return ["\n".join(b) + "\n" for b in blocks]


@pytest.mark.parametrize("block", _example_blocks(), ids=lambda b: b.split("\n")[0])
def test_each_commented_example_service_parses_once_uncommented(block):
    parsed = analyze(block)
    if "5060" in block:
        # The example's SIP block writes real=IP::5060 (a typo ldirectord's unanchored
        # regex happens to accept as the host "5060"); vigil names the line instead.
        assert [(e.location.line, "did you mean 192.168.6.2:5060?" in e.message)
                for e in parsed.errors][:1] == [(2, True)]
    else:
        assert parsed.errors == (), parsed.errors


def test_every_virtual_form():
    config = parse(
        "virtual=10.0.0.1:http\n\treal=10.0.0.2 gate\n"
        "virtual=www.example.com:443\n\treal=10.0.0.3:443 masq\n"
        "virtual=10.0.0.1:53\n\treal=10.0.0.4:53 gate\n"
        "virtual=100\n\treal=10.0.0.5 ipip\n\tprotocol=fwm\n"
        "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::2]:80 gate\n")
    idents = [v.ident for v in config.virtuals]
    assert idents == ["tcp:10.0.0.1:80", "tcp:www.example.com:443", "udp:10.0.0.1:53", "fwm:100",
                      "tcp:[2001:db8::1]:80"]
    assert [v.service for v in config.virtuals] == ["http", "https", "dns", "none", "http"]
    assert config.virtuals[0].reals[0].port == 0  # the virtual's port
    assert config.virtuals[3].reals[0].forwarding is Forwarding.IPIP
    assert ld.resolve_virtual(config.virtuals[1], NAMES) == "10.0.0.80"
    assert ld.resolve_virtual(config.virtuals[3], NAMES) is None


def test_real_server_forms():
    vs = parse(
        "virtual=10.0.0.1:80\n"
        "\treal=10.0.0.2:80 gate\n"
        "\treal=10.0.0.3:8080 masq 5\n"
        '\treal=10.0.0.4:80 gate 2 "/health", "ok" l:10 u:100\n'
        "\treal=10.0.0.10->10.0.0.12:80 gate\n"
        "\treal=sql01->sql03:mysql gate 10\n").virtuals[0]
    assert [(r.address, r.last, r.port, r.weight) for r in vs.reals] == [
        ("10.0.0.2", None, 80, 1), ("10.0.0.3", None, 8080, 5), ("10.0.0.4", None, 80, 2),
        ("10.0.0.10", "10.0.0.12", 80, 1), ("sql01", "sql03", 3306, 10)]
    assert (vs.reals[2].request, vs.reals[2].receive) == ("/health", "ok")
    assert (vs.reals[2].lower, vs.reals[2].upper) == (10, 100)
    expanded = ld.expand_reals(vs, NAMES)
    assert [r.address for r in expanded] == [
        "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11", "10.0.0.12",
        "10.0.0.11", "10.0.0.12", "10.0.0.13"]
    assert all(r.last is None for r in expanded)


def test_unresolvable_real_is_reported_when_resolving():
    vs = parse("virtual=10.0.0.1:80\n\treal=nosuchhost:80 gate\n").virtuals[0]
    with pytest.raises(ld.ResolutionError, match="real server nosuchhost does not resolve"):
        ld.expand_reals(vs, NAMES)


def test_fallbacks_global_and_per_virtual():
    config = parse("fallback=127.0.0.1\nfallback6=[::1]:8080 masq\n"
                   "virtual=10.0.0.1:80\n\treal=10.0.0.2 gate\n"
                   "virtual=10.0.0.1:25\n\treal=10.0.0.2 gate\n\tfallback=127.0.0.2:2525 masq\n"
                   "virtual6=[2001:db8::1]:443\n\treal6=[2001:db8::2] gate\n")
    assert config.fallback == ld.Fallback("127.0.0.1", None, Forwarding.GATE)
    assert config.virtuals[0].fallback.port == 80  # the global one takes the virtual's port
    assert config.virtuals[1].fallback == ld.Fallback("127.0.0.2", 2525, Forwarding.MASQ)
    assert config.virtuals[2].fallback == ld.Fallback("::1", 8080, Forwarding.MASQ, 6)


def test_service_checks_and_credentials():
    vs = parse('virtual=10.0.0.1:21\n\treal=10.0.0.2 masq\n\tservice=ftp\n\trequest="welcome.msg"'
               '\n\treceive="test"\n\tchecktype=3\n').virtuals[0]
    assert vs.login == "anonymous"  # ldirectord's default for service=ftp
    assert vs.request == "/welcome.msg"
    assert vs.checktype is CheckType.COMBINED and vs.connect_count == 3
    vs = parse('virtual=10.0.0.1:3306\n\treal=10.0.0.2 gate\n\tlogin="u"\n\tpasswd="p"\n'
               '\tdatabase="db"\n\trequest="SELECT 1"\n').virtuals[0]
    assert (vs.service, vs.login, vs.passwd, vs.database) == ("mysql", "u", "p", "db")


def test_every_service_and_checktype_is_accepted():
    for service in ld.SERVICES:
        assert parse(f"virtual=10.0.0.1:80\n\tservice={service}\n").virtuals[0].service == service
    for checktype in ("connect", "negotiate", "ping", "external", "external-perl", "on", "off"):
        vs = parse(f"virtual=10.0.0.1:80\n\tchecktype={checktype}\n").virtuals[0]
        assert vs.checktype.value == checktype


def test_checkinterval_in_a_virtual_needs_fork():
    parsed = analyze("virtual=10.0.0.1:80\n\tcheckinterval=3\n")
    assert parsed.model.virtuals[0].checkinterval == 10
    assert "ignored when fork=no" in parsed.warnings[0].message
    forked = parse("fork=yes\nvirtual=10.0.0.1:80\n\tcheckinterval=3\n")
    assert forked.virtuals[0].checkinterval == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("connecttimeout=5\n",
     (1, 16, "connecttimeout directive deprecated in favour of negotiatetimeout")),
    ("timeout=5\n",
     (1, 9, "timeout directive deprecated in favour of checktimeout and negotiatetimeout")),
    ("virtual=10.0.0.1:80\n\tconnecttimeout=5\n",
     (2, 17, "connecttimeout directive deprecated in favour of negotiatetimeout")),
    ("quiescent=maybe\n", (1, 11, "quiescent must be 'yes' or 'no'")),
    ("quiescent=yes # comment\n", (1, 11, "quiescent must be 'yes' or 'no'")),
    ("checktimeout=0\n",
     (1, 14, "invalid check timeout value '0': expected a positive whole number")),
    ("chektimeout=3\n", (1, 1, "unknown directive 'chektimeout' (did you mean 'checktimeout'?)")),
    ("virtual=10.0.0.1:80\n\treal=10.0.0.2:80\n",
     (2, 7, "invalid address for real server (wrong format): expected ADDR[->ADDR2][:PORT] "
            "gate|masq|ipip [WEIGHT]")),
    ("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 tunnel\n",
     (2, 7, "forward method must be gate, masq or ipip")),
    ("virtual=10.0.0.1:80\n\treal=10.0.0.9->10.0.0.2:80 gate\n",
     (2, 7, "invalid range 10.0.0.9->10.0.0.2: the first address must not be greater than the "
            "second")),
    ("virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate 5 junk\n",
     (2, 7, 'invalid real server line, around "junk"')),
    ("virtual=10.0.0.1:80\n\treal6=[2001:db8::2]:80 gate\n",
     (2, 8, 'cannot specify "real6" here: use "real" instead')),
    ("virtual=[2001:db8::1]:80\n", (1, 9, 'cannot specify an IPv6 address here: use "virtual6" '
                                         "instead")),
    ("virtual=10.0.0.1:80\n\trequest=/index.html\n", (2, 10, 'request must be quoted: '
                                                        'request="..."')),
    ("virtual=10.0.0.1:80\n\tservice=gopher\n",
     (2, 10, "service must be " + ", ".join(sorted(ld.SERVICES)))),
    ("virtual=10.0.0.1:80\n\tprotocol=fwm\n",
     (2, 11, "protocol must be tcp or udp if the virtual service is an address and port")),
    ("virtual=1\n\tprotocol=tcp\n",
     (2, 11, "protocol must be fwm if the virtual service is a fwmark (a number)")),
    ("virtual=10.0.0.1:80\n\n\treal=10.0.0.2:80 gate\n",
     (3, 2, "indented line outside a virtual service (the blank or unindented line 2 ended the "
            "virtual section: ldirectord allows no blank lines inside a section)")),
    ("virtual=10.0.0.1:80\n\tfork=yes\n",
     (2, 2, "fork is a global directive: write it at the start of a line, outside virtual "
            "services")),
    ("real=10.0.0.2:80 gate\n", (1, 1, "real belongs inside a virtual service (indent it under "
                                      "a virtual= line)")),
    ("virtual=10.0.0.1:80\nvirtual=10.0.0.1:80\n",
     (2, 1, "duplicate virtual server tcp:10.0.0.1:80 (also line 1)")),
    ("virtual=10.0.0.1:nosuchservice\n",
     (1, 1, "invalid port 'nosuchservice' for virtual service (unknown service name)")),
    ("emailalertstatus=none,starting\n",
     (1, 18, 'invalid email alert status: "starting" specified with "none"')),
    ("virtual=10.0.0.1:80\n\tnetmask=24\n",
     (2, 10, "invalid netmask: dotted quad notation is required")),
    ('logfile="locl0"\n',
     (1, 9, 'logfile "locl0" is neither an absolute path nor a syslog facility (auth, '
            "authpriv, cron, daemon, ftp, kern, lpr, mail, news, syslog, user, uucp, local0, "
            "local1, local2, local3, local4, local5, local6, local7)")),
    ('virtual=10.0.0.1:80\n\treceive="rs("\n',
     (2, 10, "receive pattern 'rs(' is not a regular expression: missing ) at position 3")),
])
def test_golden_errors(text, expected):
    assert expected in errors(text)


def test_comments_inside_sections():
    config = parse("virtual=10.0.0.1:80\n\t# a comment\n\treal=10.0.0.2:80 gate # web1\n"
                   "    #persistent=600\n\tscheduler=wlc\n")
    vs = config.virtuals[0]
    assert len(vs.reals) == 1 and vs.scheduler == "wlc" and vs.persistent is None


def test_supervised_bare_is_read_as_yes_with_a_warning():
    parsed = analyze("supervised\n")
    assert parsed.model.supervised is True
    assert parsed.warnings[0].message.startswith("please write supervised=yes")


def test_find_config_follows_ldirectords_lookup(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.cf").write_text("")
    assert ld.find_config("web.cf", str(tmp_path)) == str(tmp_path / "conf" / "web.cf")
    (tmp_path / "web.cf").write_text("")
    assert ld.find_config("web.cf", str(tmp_path)) == str(tmp_path / "web.cf")
    assert ld.find_config("other.cf", str(tmp_path)) is None


def test_render_round_trip():
    text = ("checktimeout=4\nnegotiatetimeout=8\nquiescent=yes\nfork=yes\ncheckinterval=2\n"
            'logfile="local0"\nemailalert="a@b.c"\nemailalertstatus=starting,stopping\n'
            "fallback=127.0.0.1:80\nexecute=other.cf\n"
            "virtual=10.0.0.1:80\n\treal=10.0.0.2:80 gate 3\n"
            '\treal=10.0.0.4->10.0.0.6:8080 masq 2 "/x", "y" l:1 u:9\n\tchecktype=2\n'
            "\tcheckinterval=5\n\tpersistent=600\n\tnetmask=255.255.255.0\n\tvirtualhost=www\n"
            'virtual6=[2001:db8::1]:443\n\treal6=[2001:db8::2]:443 gate\n\tservice=https\n'
            "\tfallback6=[::1]:443\nvirtual=7\n\treal=10.0.0.9 gate\n")
    config = parse(text)
    assert parse(ld.render(config)) == config
