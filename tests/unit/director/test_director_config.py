"""The ldirectord.cf reader: the seed's file, ldirectord's defaults, errors with file:line."""

import pytest

from vigil.demo.seed import lab_file
from vigil.director.adapter import find_config
from vigil.director.cfreader import parse
from vigil.director.table import Forward, Protocol, ServiceKey
from vigil.errors import ConfigError


def test_the_seed_file_as_written():
    config = parse(lab_file("ldirectord.cf"), "ldirectord.cf")
    assert config.autoreload and config.logfile == "/var/log/ldirectord.log"
    (service,) = config.services
    assert service.key == ServiceKey.tcp("198.51.100.100", 80)
    assert service.service.scheduler == "rr"
    assert [(r.real.address, r.real.port, r.real.forward, r.real.weight)
            for r in service.reals] == [("198.51.100.1", 80, Forward.GATE, 1),
                                        ("198.51.100.2", 80, Forward.GATE, 1)]
    assert service.fallback.address == "127.0.0.1" and service.fallback.port == 80
    check = service.check
    assert (check.checktype, check.service, check.checkport) == ("negotiate", "http", 80)
    assert check.checktimeout == 3 and check.negotiatetimeout == 3  # one sets the other
    assert service.checkinterval == 1 and service.quiescent


def test_ldirectord_defaults():
    config = parse("virtual=198.51.100.100:53\n\treal=198.51.100.1->198.51.100.3:53 masq 2\n")
    (service,) = config.services
    assert service.key.protocol is Protocol.UDP  # port 53 defaults to udp
    assert service.check.service == "dns" and service.check.checktype == "negotiate"
    assert service.service.scheduler == "wrr"
    assert (service.check.checktimeout, service.check.negotiatetimeout) == (5, 30)
    assert service.checkinterval == 10 and service.failurecount == 1
    assert not service.quiescent and service.cleanstop  # code default, not man page
    assert [r.real.address for r in service.reals] == [
        "198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert {r.real.weight for r in service.reals} == {2}


def test_real_overrides_thresholds_and_port_rules():
    config = parse(
        "virtual=198.51.100.100:80\n"
        '\treal=198.51.100.1:8080 masq 3 ".healthz", "ok" l:10 u:100\n'
        "\treal=198.51.100.2:8080 gate\n"
        "\tchecktype=3\n"
        "virtual=7\n\treal=198.51.100.1 gate\n\tprotocol=fwm\n\tchecktype=connect\n")
    web, fwm = config.services
    one, two = web.reals
    assert (one.real.port, one.request, one.receive) == (8080, "/.healthz", "ok")
    assert (one.real.lower, one.real.upper) == (10, 100)
    assert two.real.port == 80  # only NAT may change the port
    assert (web.check.checktype, web.check.connects) == ("combined", 3)
    assert fwm.key == ServiceKey.fwm(7) and fwm.reals[0].real.port == 0


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("connecttimeout=3\n", ":1", "deprecated in favour of negotiatetimeout"),
        ("virtual=198.51.100.100:80\n\treal=198.51.100.1:80 route\n", ":2", "gate|masq|ipip"),
        ("\treal=198.51.100.1:80 gate\n", ":1", "no virtual= section is open"),
        ("virtual=198.51.100.100:80\n\tquiescent=maybe\n", ":2", "expected yes or no"),
        ("virtual=198.51.100.100:80\n\tchecktype=sometimes\n", ":2", "unknown checktype"),
        ("bogus=1\n", ":1", "unknown or misplaced global directive"),
        ("virtual=198.51.100.100\n", ":1", "expected address:port"),
    ],
)
def test_errors_name_file_and_line(text, where, message):
    with pytest.raises(ConfigError) as caught:
        parse(text, "/etc/ha.d/ldirectord.cf")
    assert str(caught.value).startswith("/etc/ha.d/ldirectord.cf" + where)
    assert message in str(caught.value)


def test_find_config_looks_in_etc_ha_d_first(tmp_path, monkeypatch):
    from vigil.director import adapter

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.cf").write_text("")
    monkeypatch.setattr(adapter, "SEARCH_DIRECTORIES", (str(tmp_path), str(tmp_path / "conf")))
    assert find_config("web.cf") == tmp_path / "conf" / "web.cf"
    assert str(find_config("./other.cf")) == "other.cf"
