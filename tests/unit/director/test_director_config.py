"""ldirectord.cf through the config parser into the director's model: the seed's file,
ldirectord's defaults, LVS's port rule, errors with file:line."""

import pytest

from vigil.config import ldirectord as cf
from vigil.config.resolve import SystemResolver
from vigil.director.adapter import find_config, from_ldirectord
from vigil.errors import ConfigError
from vigil.lab.seed import lab_file
from vigil.lvs.table import Forward, Protocol, ServiceKey


def parse(text, path="ldirectord.cf"):
    return from_ldirectord(cf.parse(text, path), SystemResolver())


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
    assert (web.check.checktype, web.check.connect_count) == ("combined", 3)
    assert fwm.key == ServiceKey.fwm(7) and fwm.reals[0].real.port == 0


def test_errors_name_file_and_line(tmp_path):
    from vigil.director.adapter import load_config

    bad = tmp_path / "ldirectord.cf"
    bad.write_text("checktimeout=3\nvirtual=198.51.100.100:80\n\treal=198.51.100.1:80 route\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert str(caught.value).startswith(f"{bad}:3")
    unresolvable = tmp_path / "names.cf"
    unresolvable.write_text("virtual=198.51.100.100:80\n\treal=no-such-host.invalid:80 gate\n")
    with pytest.raises(ConfigError, match="does not resolve"):
        load_config(unresolvable)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.cf")


def test_find_config_looks_in_etc_ha_d_first(tmp_path, monkeypatch):
    from vigil.director import adapter

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.cf").write_text("")
    monkeypatch.setattr(adapter, "SEARCH_DIRECTORIES", (str(tmp_path), str(tmp_path / "conf")))
    assert find_config("web.cf") == tmp_path / "conf" / "web.cf"
    assert str(find_config("./other.cf")) == "other.cf"


def test_the_director_refuses_an_oracle_negotiate_check_at_its_line(tmp_path):
    import pytest

    from vigil.director.adapter import load_config
    from vigil.errors import ConfigError

    path = tmp_path / "ora.cf"
    path.write_text("virtual=10.0.0.1:1521\n\treal=10.0.0.2:1521 gate\n\tservice=oracle\n")
    with pytest.raises(ConfigError, match="no oracle negotiate check") as caught:
        load_config(path)
    assert caught.value.location.line == 1
