"""`vigil lvs` and `vigil director` command lines: ipvsadm's options and layout."""

import pytest

from vigil.cli.lvs import large, parse_edit, render
from vigil.cli.main import build_parser, main
from vigil.director.codec import service_to_json, table_from_json, table_to_json
from vigil.errors import UsageError
from vigil.lvs.operations import AddReal, AddService, DeleteReal, EditReal
from vigil.lvs.table import Forward, RealServer, ServiceKey, Table, VirtualService


def args(*words):
    return build_parser().parse_args(["lvs", *words])


def test_ipvsadm_edits_become_operations():
    (op,), _, _ = parse_edit(args("-A", "-t", "198.51.100.100:80", "-s", "rr", "-p"))
    assert isinstance(op, AddService)
    assert op.service.scheduler == "rr" and op.service.persistent == 300
    (op,), _, _ = parse_edit(args("-a", "-t", "198.51.100.100:80", "-r", "198.51.100.1", "-g"))
    assert op == AddReal(ServiceKey.tcp("198.51.100.100", 80), RealServer("198.51.100.1", 80))
    (op,), _, _ = parse_edit(args("-e", "-u", "198.51.100.100:53", "-r", "198.51.100.1:5353",
                                  "-m", "-w", "0"))
    assert op == EditReal(ServiceKey.udp("198.51.100.100", 53),
                          RealServer("198.51.100.1", 5353, 0, Forward.MASQ))
    (op,), _, _ = parse_edit(args("-d", "-f", "7", "-r", "198.51.100.1"))
    assert isinstance(op, DeleteReal) and op.service == ServiceKey.fwm(7)
    with pytest.raises(UsageError, match="a service is needed"):
        parse_edit(args("-A", "-s", "rr"))


def test_list_layout_is_ipvsadm_s():
    service = VirtualService(ServiceKey.tcp("198.51.100.100", 80), scheduler="wrr",
                             persistent=300, reals=(RealServer("198.51.100.1", 80, 3),
                                                    RealServer("198.51.100.2", 80, 0)))
    row = service_to_json(service)
    row["stats"] = {"reals": [{"address": "198.51.100.1", "port": 80, "active": 12,
                               "inactive": 4}], "counters": {"conns": 123456789}}
    text = render([row], numeric=True, stats=False, rate=False)
    assert text.splitlines() == [
        "IP Virtual Server version 1.2.1 (size=4096)",
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  198.51.100.100:80 wrr persistent 300",
        "  -> 198.51.100.1:80              Route   3      12         4         ",
        "  -> 198.51.100.2:80              Route   0      0          0         ",
    ]
    stats = render([row], numeric=True, stats=True, rate=False).splitlines()
    assert stats[3].split() == ["TCP", "198.51.100.100:80", "123456K", "0", "0", "0", "0"]
    assert large(99_999_999) == "99999999" and large(100_000_000) == "100000K"


def test_table_json_round_trip():
    table = Table.of([VirtualService(ServiceKey.fwm(3, family=6), scheduler="mh",
                                     sched_flags=("mh-port",),
                                     reals=(RealServer("2001:db8::1", 0, 2, Forward.IPIP),))])
    assert table_from_json(table_to_json(table)) == table


def test_director_usage_errors_are_one_line(capsys):
    assert main(["director", "-f", "/nonexistent/ldirectord.cf", "start"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vigil: /nonexistent/ldirectord.cf: error: cannot read")
    assert main(["director", "explode"]) == 2


def test_director_takes_config_before_or_after_the_action(tmp_path):
    from vigil.cli.director import _parse

    cf = tmp_path / "web.cf"
    cf.write_text("")
    for words in ([str(cf), "status"], ["status", str(cf)]):
        parsed = build_parser().parse_args(["director", *words])
        assert _parse(parsed) == (cf.resolve(), "status")
    with pytest.raises(UsageError):
        _parse(build_parser().parse_args(["director", "frobnicate"]))
