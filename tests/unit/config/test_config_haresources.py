"""haresources: groups, heartbeat's shorthand and continuations, and how each name runs."""

import gzip
import os
import stat
from pathlib import Path

import pytest

from vigil.agents.factory import builtin_argument_problem
from vigil.config import haresources as hr
from vigil.config.base import ValueProblem
from vigil.config.haresources import BUILTIN_AGENTS
from vigil.lab.seed import SEED_DIR

SEED = SEED_DIR
DEBIAN = Path("/usr/share/doc/heartbeat/haresources.gz")


def errors(text):
    parsed = hr.analyze(text, "haresources")
    return [(d.location.line, d.location.column, d.message) for d in parsed.errors]


@pytest.mark.parametrize(("name", "labels"), [
    ("haresources.mysqld", ["IPaddr::172.25.254.100/24/eth0", "mysqld"]),
    ("haresources.lvs", ["IPaddr::172.25.254.100/24/eth0", "ldirectord", "httpd"]),
    ("haresources.drbd-mysql", ["IPaddr::172.25.254.100/24/eth0", "drbddisk::mysqldata",
                                "Filesystem::/dev/drbd1::/var/lib/mysql::ext4", "mysqld"]),
])
def test_seed_variants(name, labels):
    config = hr.parse((SEED / name).read_text(), name)
    [group] = config.groups
    assert group.node == "server5.example.com"
    assert [r.label for r in group.resources] == labels
    assert group.key == labels[0]
    assert config.groups_of("SERVER5.example.com") == (group,)


def test_debian_example_parses_to_no_groups():
    text = gzip.decompress(DEBIAN.read_bytes()).decode()
    parsed = hr.analyze(text, str(DEBIAN))
    assert parsed.diagnostics == ()
    assert parsed.model.groups == ()


def test_debian_example_lines_parse_once_uncommented():
    """The example groups the annotated file shows, as users copy them."""
    text = gzip.decompress(DEBIAN.read_bytes()).decode()
    shown = [line[1:] for line in text.splitlines()
             if line.startswith(("#just.linux-ha.org", "#node1"))]
    assert len(shown) == 5
    for line in shown:
        parsed = hr.analyze(line + "\n", "haresources")
        assert parsed.ok, parsed.diagnostics
    config = hr.parse("just.linux-ha.org\t135.9.216.3/28/eth0/135.9.216.12 httpd\n")
    ref = config.groups[0].resources[0]
    assert (ref.name, ref.args, ref.text) == (
        "IPaddr", ("135.9.216.3/28/eth0/135.9.216.12",), "135.9.216.3/28/eth0/135.9.216.12")


def test_bare_ip_is_ipaddr_shorthand_and_equals_the_long_form():
    short = hr.parse_resource("10.0.0.10")
    long = hr.parse_resource("IPaddr::10.0.0.10")
    assert short == long and short.text != long.text
    assert short.label == "IPaddr::10.0.0.10"


def test_arguments_continuations_comments_and_case():
    text = ("# comment\n"
            "Node1  10.0.0.170 \\\n"
            "   Filesystem::/dev/sda1::/data1::ext2 \\\n"
            "   httpd   # the web server\n"
            "\n"
            "node2 MailTo::root@example.com::failover Delay::5::2\n")
    config = hr.parse(text)
    assert [g.node for g in config.groups] == ["node1", "node2"]
    first = config.groups[0]
    assert [r.label for r in first.resources] == [
        "IPaddr::10.0.0.170", "Filesystem::/dev/sda1::/data1::ext2", "httpd"]
    assert first.resources[1].args == ("/dev/sda1", "/data1", "ext2")
    assert first.resources[1].location.line == 3
    assert first.resources[2].location.line == 4 and first.resources[2].location.column == 4


def test_backslash_joins_without_a_blank_as_heartbeats_sed_does():
    config = hr.parse("node1 IPaddr::10.0.0.1 my\\\nsqld\n")
    assert [r.label for r in config.groups[0].resources] == ["IPaddr::10.0.0.1", "mysqld"]


def test_comment_on_a_continued_line_is_warned_about():
    parsed = hr.analyze("node1 10.0.0.1 \\\n  httpd # web\n", "haresources")
    [warning] = parsed.warnings
    assert (warning.location.line, warning.location.column) == (2, 9)
    assert "heartbeat does not strip it" in warning.message


def test_ocf_resources_and_ipv6_values():
    ref = hr.parse_resource("ocf:heartbeat:IPaddr2::ip=2001:db8::10::cidr_netmask=64::nic=eth0")
    assert ref.name == "ocf:heartbeat:IPaddr2"
    assert ref.args == ("ip=2001:db8::10", "cidr_netmask=64", "nic=eth0")
    assert dict(ref.ocf_params) == {"ip": "2001:db8::10", "cidr_netmask": "64", "nic": "eth0"}
    assert dict(hr.parse_resource("ocf:heartbeat:IPaddr2::ip=::1").ocf_params) == {"ip": "::1"}


def test_single_address_agents_take_ipv6_addresses_as_written():
    ref = hr.parse_resource("IPaddr2::2001:db8::10/64/eth0")
    assert ref.args == ("2001:db8::10/64/eth0",)
    assert builtin_argument_problem(ref) is None


def test_bare_ipv6_address_is_ipaddr_shorthand_too():
    ref = hr.parse_resource("2001:db8::10/64/eth0")
    assert (ref.name, ref.args) == ("IPaddr", ("2001:db8::10/64/eth0",))


def test_systemd_and_lsb_forms():
    assert hr.parse_resource("systemd:nginx").is_systemd
    assert hr.parse_resource("lsb:mariadb").name == "lsb:mariadb"


@pytest.mark.parametrize(("word", "message"), [
    ("ocf:heartbeat", "bad OCF resource 'ocf:heartbeat': write ocf:PROVIDER:TYPE, e.g. "
                      "ocf:heartbeat:IPaddr2"),
    ("ocf:heartbeat:Dummy::fake", "OCF parameter 'fake' is not key=value (write "
                                  "ocf:heartbeat:Dummy::key=value::key=value)"),
    ("ocf:heartbeat:Dummy::a=1::a=2", "OCF parameter a given twice"),
    ("systemd:nginx::x", "systemd:nginx takes no '::' arguments (systemd units have none)"),
    ("systemd:", "bad systemd unit name in 'systemd:': write systemd:UNIT, e.g. systemd:nginx"),
    ("::x", "resource '::x' has no name before '::'"),
    ("2001:db8", "bad resource name '2001:db8'"),
    ("my$script", "bad resource name 'my$script'"),
])
def test_bad_resource_words(word, message):
    with pytest.raises(ValueProblem) as caught:
        hr.parse_resource(word)
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "expected"), [
    ("node1\n", (1, 1, "group for node1 lists no resources")),
    ("node1 10.0.0.1\nnode2 10.0.0.1 httpd\n",
     (2, 7, "IPaddr::10.0.0.1 starts two groups (also line 1): the first resource names the "
            "group and must be unique")),
    ("node1 10.0.0.1 ocf:x::a\n",
     (1, 16, "bad OCF resource 'ocf:x': write ocf:PROVIDER:TYPE, e.g. ocf:heartbeat:IPaddr2")),
])
def test_golden_errors(text, expected):
    assert expected in errors(text)


def test_resource_in_two_groups_is_warned_about():
    parsed = hr.analyze("node1 10.0.0.1 httpd\nnode2 10.0.0.2 httpd\n", "haresources")
    [warning] = parsed.warnings
    assert (warning.location.line, warning.location.column) == (2, 16)
    assert warning.message == ("httpd is also in the group on line 1: two groups would fight "
                               "over it")


@pytest.mark.parametrize(("ref", "message"), [
    ("IPaddr::10.0.0", "IPaddr::10.0.0: '10.0.0' is not an IP address"),
    ("IPaddr::10.0.0.1/33", "IPaddr::10.0.0.1/33: bad prefix length '33' (1..32)"),
    ("IPaddr2::2001:db8::1/64/eth0/10.0.0.255",
     "IPaddr2::2001:db8::1/64/eth0/10.0.0.255: IPv6 has no broadcast address"),
    ("Filesystem::/dev/sda1", "Filesystem takes device::directory[::fstype[::options]]"),
    ("Filesystem::/dev/sda1::data",
     "Filesystem: mount point 'data' must be an absolute path other than /"),
    ("drbddisk::a::b", "drbddisk takes at most one argument: the resource name"),
    ("Delay::x", "Delay: 'x' is not a number of seconds"),
    ("MailTo", "MailTo takes addr[,addr...][::subject]"),
    ("SendArp::10.0.0.1", "SendArp takes ip/iface"),
])
def test_builtin_arguments_are_judged_by_the_agents_themselves(ref, message):
    assert builtin_argument_problem(hr.parse_resource(ref)) == message


@pytest.mark.parametrize("ref", [
    "10.0.0.1", "10.0.0.1/24/eth0/10.0.0.255", "IPaddr::10.0.0.1/24/eth0:0",
    "IPaddr2::10.0.0.1/255.255.255.0/eth0", "IPaddr::2001:db8::1", "SendArp::10.0.0.1/eth0",
    "IPsrcaddr::10.0.0.1", "Delay::2::1", "MailTo::a@b.c,d@e.f::subject", "drbddisk",
    "ldirectord::web.cf", "Filesystem::-Ldata::/srv::ext4::noatime",
])
def test_builtin_arguments_heartbeat_users_write_are_accepted(ref):
    assert builtin_argument_problem(hr.parse_resource(ref)) is None


def test_builtin_arguments_of_the_seed_are_fine():
    for name in ("haresources.mysqld", "haresources.lvs", "haresources.drbd-mysql"):
        for ref in hr.parse((SEED / name).read_text()).resources:
            assert builtin_argument_problem(ref) is None


def _script(path, executable=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(path, 0o755 if executable else 0o644)


@pytest.fixture
def dirs(tmp_path):
    resolver = hr.ResourceResolver(
        resource_dirs=(str(tmp_path / "resource.d"),), init_dirs=(str(tmp_path / "init.d"),),
        ocf_root=str(tmp_path / "ocf"), systemd_dirs=(str(tmp_path / "systemd"),))
    return tmp_path, resolver


def test_resolution_order(dirs):
    tmp, resolver = dirs
    _script(tmp / "resource.d" / "apache")
    _script(tmp / "init.d" / "apache")
    _script(tmp / "init.d" / "mysql")
    _script(tmp / "init.d" / "broken", executable=False)
    _script(tmp / "resource.d" / "IPaddr")  # a built-in wins over heartbeat's wrapper...
    _script(tmp / "ocf" / "heartbeat" / "Dummy")
    (tmp / "systemd").mkdir()
    (tmp / "systemd" / "nginx.service").write_text("[Service]\n")
    (tmp / "systemd" / "getty@.service").write_text("[Service]\n")

    def how(word):
        r = resolver.resolve(hr.parse_resource(word))
        return (r.kind.value, r.path)

    assert how("IPaddr::10.0.0.1") == ("builtin", None)
    assert how("lsb:IPaddr") == ("heartbeat", str(tmp / "resource.d" / "IPaddr"))  # ...unless
    assert how("apache") == ("heartbeat", str(tmp / "resource.d" / "apache"))
    assert how("mysql") == ("lsb", str(tmp / "init.d" / "mysql"))
    assert how("lsb:apache") == ("heartbeat", str(tmp / "resource.d" / "apache"))
    assert how("lsb:mysql") == ("lsb", str(tmp / "init.d" / "mysql"))
    assert how("ocf:heartbeat:Dummy::state=/tmp/x") == (
        "ocf", str(tmp / "ocf" / "heartbeat" / "Dummy"))
    assert how("systemd:nginx") == ("systemd", str(tmp / "systemd" / "nginx.service"))
    assert how("systemd:nginx.service") == ("systemd", str(tmp / "systemd" / "nginx.service"))
    assert how("systemd:getty@tty1") == ("systemd", str(tmp / "systemd" / "getty@.service"))
    with pytest.raises(hr.ResolveError) as caught:
        resolver.resolve(hr.parse_resource("broken"))
    assert str(caught.value) == (
        f"cannot locate resource broken: not a vigil built-in agent and no executable "
        f"{tmp}/resource.d/broken or {tmp}/init.d/broken")
    with pytest.raises(hr.ResolveError, match="OCF agent pacemaker:Dummy not found"):
        resolver.resolve(hr.parse_resource("ocf:pacemaker:Dummy"))
    with pytest.raises(hr.ResolveError, match=r"systemd unit httpd\.service not found"):
        resolver.resolve(hr.parse_resource("systemd:httpd"))


def test_every_builtin_resolves_without_files(dirs):
    _, resolver = dirs
    for name in BUILTIN_AGENTS:
        assert resolver.resolve(hr.ResourceRef(name, name)).kind is hr.AgentKind.BUILTIN


def test_default_resolver_finds_the_machines_scripts():
    """heartbeat's wrappers and resource-agents' OCF agents are installed (scripts/apt-packages)."""
    resolver = hr.ResourceResolver()
    portblock = resolver.resolve(hr.parse_resource("portblock::tcp::80::block"))
    assert portblock.path == "/etc/ha.d/resource.d/portblock"
    assert os.stat(portblock.path).st_mode & stat.S_IXUSR
    dummy = resolver.resolve(hr.parse_resource("ocf:heartbeat:Dummy"))
    assert dummy.path == "/usr/lib/ocf/resource.d/heartbeat/Dummy"


def test_render_round_trip():
    text = ("node1 10.0.0.1 IPaddr2::2001:db8::1/64/eth0 ocf:heartbeat:Dummy::a=1::b=x::y "
            "systemd:nginx Filesystem::/dev/drbd0::/srv::ext4 mysqld\n"
            "node2 SendArp::10.0.0.2/eth1\n")
    config = hr.parse(text)
    assert hr.parse(hr.render(config)) == config
