"""The lab router's resilient groups: what `plan` asks the kernel for."""

from __future__ import annotations

from vigil.lab.resilient import FIRST_GROUP_ID, FIRST_NEXTHOP_ID, Installed, available, plan
from vigil.lab.router import bird_config

VIP = "198.51.100.100/32"
VIP6 = "2001:db8::100/128"
DIR1, DIR2, DIR3 = (("198.51.100.5", "eth0"), ("198.51.100.6", "eth0"),
                    ("198.51.100.7", "eth0"))


def test_a_learned_multipath_route_becomes_a_resilient_group_of_its_gateways():
    installed = Installed()
    lines = plan({VIP: frozenset({DIR1, DIR2, DIR3})}, installed)
    n1, n2, n3 = FIRST_NEXTHOP_ID, FIRST_NEXTHOP_ID + 1, FIRST_NEXTHOP_ID + 2
    assert lines[:3] == [f"nexthop replace id {n1} via 198.51.100.5 dev eth0",
                         f"nexthop replace id {n2} via 198.51.100.6 dev eth0",
                         f"nexthop replace id {n3} via 198.51.100.7 dev eth0"]
    assert lines[3].startswith(f"nexthop replace id {FIRST_GROUP_ID} group {n1}/{n2}/{n3} "
                               "type resilient buckets ")
    assert lines[4] == f"route replace {VIP} nhid {FIRST_GROUP_ID}"
    assert plan({VIP: frozenset({DIR1, DIR2, DIR3})}, installed) == []


def test_a_withdrawn_gateway_leaves_the_group_before_its_nexthop_goes():
    installed = Installed()
    plan({VIP: frozenset({DIR1, DIR2, DIR3})}, installed)
    lines = plan({VIP: frozenset({DIR2, DIR3})}, installed)
    n2, n3 = FIRST_NEXTHOP_ID + 1, FIRST_NEXTHOP_ID + 2
    assert lines[0].startswith(f"nexthop replace id {FIRST_GROUP_ID} group {n2}/{n3} ")
    assert lines[1:] == [f"nexthop del id {FIRST_NEXTHOP_ID}"]
    # it comes back under a new id, which joins the same group (the route stays)
    lines = plan({VIP: frozenset({DIR1, DIR2, DIR3})}, installed)
    n4 = FIRST_NEXTHOP_ID + 3
    assert lines[0] == f"nexthop replace id {n4} via 198.51.100.5 dev eth0"
    assert lines[1].startswith(f"nexthop replace id {FIRST_GROUP_ID} group {n2}/{n3}/{n4} ")
    assert len(lines) == 2


def test_a_prefix_gone_takes_its_route_group_and_nexthops_away():
    installed = Installed()
    plan({VIP: frozenset({DIR1}), VIP6: frozenset({("2001:db8::5", "eth0")})}, installed)
    lines = plan({VIP6: frozenset({("2001:db8::5", "eth0")})}, installed)
    assert lines == [f"route del {VIP}", f"nexthop del id {FIRST_GROUP_ID}",
                     f"nexthop del id {FIRST_NEXTHOP_ID}"]
    lines = plan({}, installed)
    assert lines == [f"-6 route del {VIP6}", f"nexthop del id {FIRST_GROUP_ID + 1}",
                     f"nexthop del id {FIRST_NEXTHOP_ID + 1}"]
    assert installed == Installed()


def test_the_router_bird_exports_to_the_staging_table_when_asked():
    assert "kernel table" not in bird_config("198.51.100.250", ["198.51.100.5"])
    assert "    kernel table 200;\n" in bird_config("198.51.100.250", ["198.51.100.5"],
                                                   kernel_table=200)


def test_resilient_groups_are_known_from_linux_5_13():
    assert available("6.18.44-fc-v1252") and available("5.13.0")
    assert not available("5.12.19-amd64") and not available("4.19.0")
    assert not available("weird")


def test_ip_batch_json_answers_are_read_one_after_the_other():
    from vigil.lab.router import json_values

    text = '[{"dst":"198.51.100.100","gateway":"198.51.100.5"}]\n[{"gateway":"198.51.100.6"}]\n'
    assert json_values(text) == [[{"dst": "198.51.100.100", "gateway": "198.51.100.5"}],
                                 [{"gateway": "198.51.100.6"}]]
    assert json_values("") == [] and json_values("  \n") == []
    assert json_values('[1]\nRTNETLINK answers: Network is unreachable\n[2]') == [[1]]
