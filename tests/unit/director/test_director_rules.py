"""ipvsadm's rule lines (`vigil lvs -S` / `-R`): what is saved restores the same table,
and a bad line is named by its number."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.cli.lvs import large
from vigil.lvs import rules
from vigil.lvs.operations import apply_operations
from vigil.lvs.table import Forward, RealServer, ServiceKey, Table, VirtualService


def _real(family: int):
    prefix = "2001:db8::" if family == 6 else "198.51.100."
    return st.builds(
        RealServer, st.integers(1, 250).map(lambda n: f"{prefix}{n}"), st.integers(1, 65535),
        st.integers(0, 2147483647), st.sampled_from(list(Forward)), st.integers(0, 65535),
        st.integers(0, 65535))


@st.composite
def services(draw):
    family = draw(st.sampled_from([4, 6]))
    kind = draw(st.sampled_from(["tcp", "udp", "fwm"]))
    if kind == "fwm":
        key = ServiceKey.fwm(draw(st.integers(1, 2**32 - 1)), family=family)
    else:
        address = f"2001:db8::{draw(st.integers(1, 999))}" if family == 6 else \
            f"203.0.113.{draw(st.integers(1, 254))}"
        key = ServiceKey(rules.Protocol(kind), address, draw(st.integers(0, 65535)))
    persistent = draw(st.none() | st.integers(0, 2**32 - 1))
    netmask = None
    if persistent is not None:
        netmask = draw(st.none() | (st.integers(0, 128).map(str) if family == 6 else
                                    st.sampled_from(["255.255.255.0", "255.255.0.0"])))
    reals = draw(st.lists(_real(family), max_size=4, unique_by=lambda r: r.key))
    if kind != "fwm":  # only NAT keeps its own port: the others take the service's
        reals = [r if r.forward is Forward.MASQ else RealServer(
            r.address, key.port, r.weight, r.forward, r.upper, r.lower) for r in reals]
        reals = list({r.key: r for r in reals}.values())
    return VirtualService(
        key, draw(st.sampled_from(["rr", "wrr", "wlc", "sh", "mh", "lblcr"])), persistent,
        netmask, tuple(draw(st.sets(st.sampled_from(sorted(rules.SCHED_FLAGS))))),
        draw(st.booleans()), tuple(reals))


@settings(max_examples=200, deadline=None)
@given(st.lists(services(), max_size=4, unique_by=lambda s: s.key))
def test_a_saved_table_restores_to_the_same_table(listed):
    table = Table.of(listed)
    text = "\n".join(rules.save_lines(table)) + "\n"
    steps = rules.plan(rules.parse_rules(text), Table())
    assert apply_operations(Table(), [op for _, op in steps]) == table


def test_saved_lines_are_ipvsadm_s():
    service = VirtualService(ServiceKey.tcp("198.51.100.10", 80), "wlc", reals=(
        RealServer("198.51.100.10", 80, 1), RealServer("198.51.100.9", 80, 2, Forward.IPIP)))
    assert rules.save_lines([service]) == [
        "-A -t 198.51.100.10:80 -s wlc",
        "-a -t 198.51.100.10:80 -r 198.51.100.9:80 -i -w 2",  # addresses as numbers
        "-a -t 198.51.100.10:80 -r 198.51.100.10:80 -g -w 1",
    ]
    fwm = VirtualService(ServiceKey.fwm(5, family=6), "rr", persistent=300, netmask="64")
    assert rules.save_lines([fwm]) == ["-A -f 5 -6 -s rr -p 300 -M 64"]
    full = VirtualService(ServiceKey.udp("198.51.100.10", 53), "rr", persistent=300,
                          netmask="255.255.255.255")
    assert rules.save_lines([full]) == ["-A -u 198.51.100.10:53 -s rr -p 300 -M 255.255.255.255"]


def test_a_bad_line_is_named_by_its_number():
    text = "# saved by ipvsadm-save\n\n-A -t 198.51.100.10:80 -s rr\n-a -t 198.51.100.10:80 -w 1\n"
    with pytest.raises(rules.RuleError) as caught:
        rules.parse_rules(text)
    assert str(caught.value) == "line 4: a real server is needed: -r RIP[:PORT]"
    for line, problem in (("-A -t 198.51.100.10:80 -s rr -p x", "invalid int value"),
                          ("-A -t 198.51.100.10:80 -D", "exactly one of"),
                          ("-A -t 198.51.100.10:80 -u 198.51.100.10:80", "one of -t"),
                          ("-A -t 198.51.100.10:99999", "out of range"),
                          ("-A -t 198.51.100.10:80 -M 255.0.255.0", "bad netmask"),
                          ("-A -f 1 -6 -p 1 -M 255.255.255.0", "bad netmask"),
                          ("ipvsadm", "no command"),
                          ("-A -t 198.51.100.10:80 -s 'w lc'", "bad scheduler name"),
                          ("-A -t 198.51.100.10:80 \x07", "control character")):
        with pytest.raises(rules.RuleError, match=problem) as caught:
            rules.parse_rules("\n" + line)
        assert caught.value.line == 2


def test_port_names_need_the_lookup_given():
    def ports(name, protocol):
        return {("http", "tcp"): 80}.get((name, protocol))

    [rule] = rules.parse_rules("-A -t 198.51.100.10:http -s rr", ports)
    assert rule.command.service.key == ServiceKey.tcp("198.51.100.10", 80)
    with pytest.raises(rules.RuleError, match="unknown port 'http'"):
        rules.parse_rules("-A -u 198.51.100.10:http -s rr", ports)


def test_ipvsadm_s_sort_order():
    keys = [ServiceKey.fwm(2), ServiceKey.udp("198.51.100.9", 53),
            ServiceKey.tcp("198.51.100.10", 80), ServiceKey.tcp("198.51.100.9", 443),
            ServiceKey.tcp("2001:db8::1", 80), ServiceKey.fwm(1, family=6)]
    assert sorted(keys, key=rules.service_order) == [
        ServiceKey.tcp("198.51.100.9", 443), ServiceKey.tcp("198.51.100.10", 80),
        ServiceKey.udp("198.51.100.9", 53), ServiceKey.tcp("2001:db8::1", 80),
        ServiceKey.fwm(1, family=6), ServiceKey.fwm(2)]


def test_large_numbers_round_as_ipvsadm_and_exact_does_not():
    assert [large(n) for n in (99_999_999, 100_000_000, 999_999_999_9, 5 * 10**9,
                               10**11, 10**14)] == [
        "99999999", "100000K", "9999M", "5000M", "100G", "100T"]
    assert large(5 * 10**9, exact=True) == "5000000000"


def test_a_rule_that_does_not_fit_is_found_in_a_long_input():
    adds = [f"-A -t 198.51.100.{n}:80 -s rr" for n in range(1, 201)]
    text = "\n".join([*adds, "-C", *adds, "-D -t 198.51.100.7:80", adds[6], adds[6]])
    with pytest.raises(rules.RuleError) as caught:
        rules.plan(rules.parse_rules(text), Table())
    assert caught.value.line == 200 + 1 + 200 + 1 + 1 + 1
    assert "198.51.100.7:80 exists already" in str(caught.value)
