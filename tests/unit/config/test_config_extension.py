"""vigil.cf: vigil's own settings, per agent and per resource, in heartbeat's style."""

import pytest

from vigil.agents.options import options_from_extension
from vigil.config import extension as ext
from vigil.config.haresources import parse_resource

EXAMPLE = """\
# vigil's own settings
monitor_interval 5
restart_limit 2
fence_command /usr/local/sbin/fence-peer %n --hard
fence_timeout 30
metrics_address 127.0.0.1:9694
garp_count 3
garp_interval 500ms

agent mysqld
    monitor_interval 2

    on_monitor_failure failover
resource 198.51.100.100/24/eth0
\tmonitor off
"""


def test_defaults_without_a_file():
    config = ext.parse("")
    assert config.defaults == ext.ResourcePolicy()
    assert config.defaults.monitor_interval is None  # each agent's own default
    assert config.defaults.restart_limit == 3
    assert config.defaults.failed_stop == "block"  # never let the peer start it twice
    assert config.fence_command is None and config.metrics_address is None
    assert (config.garp_count, config.garp_interval) == (None, None)


def test_example():
    config = ext.parse(EXAMPLE)
    assert config.defaults.monitor_interval == 5.0 and config.defaults.restart_limit == 2
    assert config.fence_command == "/usr/local/sbin/fence-peer %n --hard"
    assert config.fence_timeout == 30.0 and config.metrics_address == "127.0.0.1:9694"
    assert (config.garp_count, config.garp_interval) == (3, 0.5)


def test_policy_precedence_resource_then_agent_then_globals():
    config = ext.parse(EXAMPLE)
    mysqld = config.policy_for(parse_resource("mysqld"))
    assert (mysqld.monitor_interval, mysqld.on_monitor_failure, mysqld.restart_limit) == (
        2.0, "failover", 2)
    vip = config.policy_for(parse_resource("IPaddr::198.51.100.100/24/eth0"))
    assert vip.monitor is False and vip.monitor_interval == 5.0
    # the shorthand in vigil.cf and the long form in haresources name one resource
    assert config.policy_for(parse_resource("198.51.100.100/24/eth0")) == vip
    other = config.policy_for(parse_resource("httpd"))
    assert other == config.defaults


@pytest.mark.parametrize(("text", "expected"), [
    ("monitor_intervall 5\n", (1, 1, "unknown setting 'monitor_intervall' (did you mean "
                                     "'monitor_interval'?)")),
    ("monitor_interval 5s\n", (1, 18, "monitor_interval: bad time '5s': expected seconds (e.g. 2 "
                                      "or 1.5) or milliseconds (e.g. 1500ms)")),
    ("restart_limit -1\n", (1, 15, "restart_limit: number -1 is out of range 0..1000")),
    ("failed_stop panic\n", (1, 13, "failed_stop: bad value 'panic': expected block | reboot")),
    ("metrics_address localhost\n",
     (1, 17, "metrics_address: bad address 'localhost': expected HOST:PORT (e.g. "
             "127.0.0.1:9694), PORT (on loopback) or off")),
    ("  monitor off\n", (1, 3, "indented line outside an 'agent' or 'resource' section")),
    ("agent mysqld\n  fence_timeout 3\n",
     (2, 3, "fence_timeout is a global setting: write it unindented, outside sections")),
    ("agent\n", (1, 1, "write 'agent NAME' on a line of its own")),
    ("agent a\nagent a\n", (2, 1, "agent a has two sections (first on line 1)")),
    ("monitor_interval 1 2\n", (1, 20, "monitor_interval takes one value")),
    ("resource ocf:x\n", (1, 10, "resource: bad OCF resource 'ocf:x': write ocf:PROVIDER:TYPE, "
                                "e.g. ocf:heartbeat:IPaddr2")),
])
def test_golden_errors(text, expected):
    found = ext.analyze(text, "vigil.cf").errors
    assert expected in [(d.location.line, d.location.column, d.message) for d in found]


def test_metrics_off_and_render_round_trip():
    assert ext.parse("metrics_address off\n").metrics_address is None
    config = ext.parse(EXAMPLE + "takeover_delay 2\nfence_before_takeover off\n")
    assert ext.parse(ext.render(config)) == config


def test_every_keyword_has_a_parser_and_a_doc():
    for kw in ext.KEYWORDS.values():
        assert kw.parser is not None and kw.doc


def test_agent_options_drive_the_agents():
    from vigil.agents.factory import build_agent
    from vigil.agents.options import StopFailurePolicy

    config = ext.parse(EXAMPLE + "failed_stop reboot\nagent IPaddr\n  monitor_timeout 4\n"
                                 "  stop_timeout 9\n")
    options = options_from_extension(config)
    vip = build_agent("IPaddr", ("198.51.100.100/24/eth0",), options=options)
    other_vip = build_agent("IPaddr", ("198.51.100.101/24/eth0",), options=options)
    mysqld_like = build_agent("Delay", ("1",), options=options)
    assert options.interval_for(vip) == 5.0  # the global setting (the section sets monitor off)
    assert options.timeout_for(other_vip, "stop") == 9.0  # agent section: its largest timeout
    assert options.interval_for(mysqld_like) == 5.0
    assert options.on_stop_failure is StopFailurePolicy.REBOOT
    assert (options.arp_count, options.arp_interval) == (3, 0.5)
    assert options.restart_limit == 2
    plain = options_from_extension(ext.parse(""))
    assert plain.interval_for(vip) == vip.default_interval
    assert plain.on_stop_failure is StopFailurePolicy.BLOCK


def test_failed_stop_reboot_is_carried_out_with_the_reboot_command():
    from vigil.config.extension import parse, render, unsupported
    assert unsupported(parse("restart_limit 2\n")) == []
    assert unsupported(parse("agent mysqld\n    failed_stop reboot\n")) == []
    assert parse("").reboot_command == "/sbin/reboot -nf"  # heartbeat's cl_reboot
    config = parse("reboot_command /usr/local/sbin/self-fence --now now\n")
    assert config.reboot_command == "/usr/local/sbin/self-fence --now now"
    assert parse(render(config)) == config
    said = unsupported(parse("state_dir /srv/vigil\nmetrics_address 127.0.0.1:9694\n"))
    assert [p.split(" ", 1)[0] for p in said] == ["state_dir"]


def test_metrics_address_alone_is_a_port_on_loopback():
    from vigil.config.extension import parse, render
    config = parse("metrics_address 9694\n")
    assert config.metrics_address == "127.0.0.1:9694"
    assert parse(render(config)) == config


def test_fence_sections_name_an_agent_and_its_parameters():
    from vigil.config.base import to_jsonable
    from vigil.config.extension import analyze, parse, render

    text = ("fence Server6.example.com\n    agent fence_ipmilan\n    ip 203.0.113.16\n"
            "    username admin\n    password s3cret pass\n")
    config = parse(text)
    device = config.fence_devices["server6.example.com"]
    assert device.agent == "fence_ipmilan"
    assert dict(device.params) == {"ip": "203.0.113.16", "username": "admin",
                                   "password": "s3cret pass"}
    assert parse(render(config)) == config
    shown = to_jsonable(config)["fence_devices"]["server6.example.com"]
    assert "s3cret" not in str(shown)
    errors = [(d.location.line, d.message) for d in analyze(
        "fence a\n    ip 1\nfence b\n    agent x\nfence b\n    agent y\n"
        "fence c\n    Bad-Key 1\n").diagnostics]
    assert (1, "fence a: the section names no agent (agent fence_...)") in errors
    assert (5, "fence b has two sections (first on line 3)") in errors
    assert any(line == 8 and "a fence section holds" in message for line, message in errors)
