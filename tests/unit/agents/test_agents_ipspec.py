"""heartbeat's address argument and findif's choice of interface."""

import pytest

from vigil.agents.ipspec import AddressSpecError, parse_address
from vigil.net.interfaces import (
    NoInterface,
    Placement,
    Route,
    default_broadcast,
    find_interface,
    free_label,
)


@pytest.mark.parametrize("text, expected", [
    ("198.51.100.100", ("198.51.100.100", None, None, None, None)),
    ("198.51.100.100/24", ("198.51.100.100", 24, None, None, None)),
    ("198.51.100.100/24/eth0", ("198.51.100.100", 24, "eth0", None, None)),
    ("198.51.100.100/24/eth0/198.51.100.255", ("198.51.100.100", 24, "eth0", None,
                                               "198.51.100.255")),
    # a third field starting with a digit is the broadcast (heartbeat's wrapper)
    ("198.51.100.100/24/198.51.100.255", ("198.51.100.100", 24, None, None, "198.51.100.255")),
    ("198.51.100.100/255.255.255.0/eth1", ("198.51.100.100", 24, "eth1", None, None)),
    ("198.51.100.100/24/eth0:web", ("198.51.100.100", 24, "eth0", "web", None)),
    ("2001:db8:0:1::100/64/eth0", ("2001:db8:0:1::100", 64, "eth0", None, None)),
])
def test_address_forms(text, expected):
    spec = parse_address(text)
    assert (spec.ip, spec.prefixlen, spec.nic, spec.label, spec.broadcast) == expected


@pytest.mark.parametrize("text", ["mysqld", "198.51.100.300", "198.51.100.1/33",
                                  "198.51.100.1/24/eth0/x", "2001:db8::1/64/eth0/1.2.3.4",
                                  "198.51.100.1/24/averyveryverylongname:label"])
def test_bad_address_forms_are_refused(text):
    with pytest.raises(AddressSpecError):
        parse_address(text)


ROUTES = [
    Route("0.0.0.0/0", "eth0", scope=0, gateway="198.51.100.250"),
    Route("198.51.100.0/24", "eth0"),
    Route("198.51.100.0/25", "eth2"),
    Route("203.0.113.0/24", "eth1"),
    Route("10.0.0.0/8", "eth1", scope=0, gateway="203.0.113.1"),
    Route("2001:db8:0:1::/64", "eth0", scope=0),
    Route("::/0", "eth0", scope=0, gateway="2001:db8:0:1::1"),
]


def test_findif_picks_the_connected_subnet_with_the_longest_prefix():
    assert find_interface("198.51.100.100", ROUTES) == Placement("eth2", 25, "198.51.100.127")
    assert find_interface("198.51.100.200", ROUTES) == Placement("eth0", 24, "198.51.100.255")
    assert find_interface("203.0.113.100", ROUTES).ifname == "eth1"
    assert find_interface("2001:db8:0:1::100", ROUTES) == Placement("eth0", 64, None)


def test_findif_honours_a_given_interface_and_mask():
    assert find_interface("198.51.100.100", ROUTES, nic="eth0").ifname == "eth0"
    assert find_interface("198.51.100.100", ROUTES, prefixlen=26).prefixlen == 26
    # interface and mask given: no route needed, as in heartbeat
    assert find_interface("192.168.7.1", [], nic="eth3", prefixlen=24) == \
        Placement("eth3", 24, "192.168.7.255")


def test_findif_never_uses_a_gateway_or_default_route():
    with pytest.raises(NoInterface):
        find_interface("10.1.2.3", ROUTES)
    with pytest.raises(NoInterface):
        find_interface("8.8.8.8", ROUTES)
    with pytest.raises(NoInterface):
        find_interface("198.51.100.100", ROUTES, nic="eth1")


def test_broadcast_and_labels():
    assert default_broadcast("198.51.100.100", 24) == "198.51.100.255"
    assert default_broadcast("198.51.100.100", 32) is None
    assert default_broadcast("2001:db8::1", 64) is None
    assert free_label("eth0", {"eth0", "eth0:0", "eth0:2"}) == "eth0:1"
