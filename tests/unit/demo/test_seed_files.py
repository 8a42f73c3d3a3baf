"""The tutorial's files reach the lab with only their addresses mapped."""

import ipaddress
import re

import pytest

from vigil.lab.seed import SEED_FILES, adapt, lab_file, original

LAB_RANGES = [ipaddress.ip_network(n) for n in ("198.51.100.0/24", "127.0.0.0/8")]


@pytest.mark.parametrize("name", SEED_FILES)
def test_every_address_lands_in_the_lab_range(name):
    for address in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", lab_file(name)):
        if address.startswith("255."):
            continue  # a netmask, not a host
        ip = ipaddress.ip_address(address)
        assert any(ip in net for net in LAB_RANGES), f"{name}: {address} escapes the lab"


@pytest.mark.parametrize("name", SEED_FILES)
def test_nothing_but_addresses_changes(name):
    text, adapted = original(name), lab_file(name)
    strip = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
    assert strip.sub("IP", text) == strip.sub("IP", adapted)
    assert text.count("\n") == adapted.count("\n")


def test_the_seed_vip_and_ldirectord_example_agree():
    assert "IPaddr::198.51.100.100/24/eth0" in lab_file("haresources.lvs")
    ld = lab_file("ldirectord.cf")
    assert "virtual=198.51.100.100:80" in ld
    assert "real=198.51.100.1:80 gate" in ld and "real=198.51.100.2:80 gate" in ld
    assert "fallback=127.0.0.1:80 gate" in ld
    assert "ping 198.51.100.250" in lab_file("ha.cf")


def test_addresses_inside_longer_numbers_are_left_alone():
    assert adapt("version 1172.25.254.1.5") == "version 1172.25.254.1.5"
    assert adapt("x 172.25.254.6:7789;") == "x 198.51.100.6:7789;"


def test_unknown_file_is_refused():
    with pytest.raises(KeyError):
        original("httpd.conf")
