"""Plans rendered to nftables JSON (golden files) and diffed into minimal transactions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_support import ENV, RS1, RS2, VIP, masq, seed_table

from vigil.dataplane.commands import replace_all, transaction
from vigil.dataplane.plan import SLOTS, build_plan
from vigil.dataplane.ruleset import render
from vigil.lvs.table import RealServer, ServiceKey, Table, VirtualService

GOLDEN = Path(__file__).parent / "golden"


def summarize(commands: list[dict]) -> list[dict]:
    """Long element lists shortened (4093 slots): their count and first three stay."""
    out = json.loads(json.dumps(commands))
    for command in out:
        for body in command.values():
            element = body.get("element")
            if element and len(element.get("elem", [])) > 4:
                element["elem"] = {"count": len(element["elem"]), "first": element["elem"][:3]}
    return out


def check_golden(name: str, commands: list[dict]) -> None:
    path = GOLDEN / name
    text = json.dumps(summarize(commands), indent=1, sort_keys=True) + "\n"
    if os.environ.get("VIGIL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (VIGIL_UPDATE_GOLDEN=1 rewrites it)"


def kinds(commands: list[dict]) -> list[str]:
    return [f"{verb} {next(iter(body))}" for c in commands for verb, body in c.items()]


def test_the_seed_table_builds_the_golden_ruleset():
    plan = build_plan(seed_table(), ENV)
    commands = transaction(None, render(plan))
    check_golden("seed_dr.json", commands)
    added = [c["add"]["element"] for c in commands if "element" in c.get("add", {})]
    slots = [e for e in added if e["name"].startswith("m_")]
    assert len(slots[0]["elem"]) == SLOTS  # every slot has its element


def test_a_learning_director_records_and_holds_back():
    commands = transaction(None, render(build_plan(seed_table(), ENV, learning=True)))
    check_golden("seed_dr_learning.json", commands)


def test_nothing_changed_means_no_command():
    plan = build_plan(seed_table(), ENV, now=0.0)
    again = build_plan(seed_table(), ENV, plan, now=50.0)
    assert transaction(render(plan), render(again)) == []


def test_a_weight_change_touches_slots_only():
    before = build_plan(seed_table(1, 1), ENV)
    wrr = build_plan(seed_table(2, 1), ENV, before, now=1.0)
    commands = transaction(render(before), render(wrr))
    # Slots rs2 gave up go through a transition chain to rs1; rs1's rules are rewritten
    # only for the weight their comment records; nothing else changes.
    assert set(kinds(commands)) == {"add chain", "add rule", "delete element", "add element",
                                    "flush chain"}
    flushed = [c["flush"]["chain"]["name"] for c in commands if "flush" in c]
    assert flushed == ["d_tcp_198_51_100_100_80__198_51_100_1_80"]
    chains = [c["add"]["chain"]["name"] for c in commands if "chain" in c.get("add", {})]
    assert chains == ["t_tcp_198_51_100_100_80__198_51_100_2_80__198_51_100_1_80"]
    moved = sum(len(c["add"]["element"]["elem"]) for c in commands
                if "element" in c.get("add", {}))
    assert moved == 2046 - 1364


def test_quiesce_then_window_end():
    before = build_plan(seed_table(), ENV, now=0.0)
    quiet = build_plan(seed_table(1, 0), ENV, before, now=1.0)
    commands = transaction(render(before), render(quiet))
    check_golden("seed_quiesce_rs2.json", commands)
    later = build_plan(seed_table(1, 0), ENV, quiet, now=10_000.0)
    commands = transaction(render(quiet), render(later))
    assert kinds(commands)[:2] == ["delete element", "add element"]
    assert kinds(commands)[-2:] == ["flush chain", "delete chain"]


def test_learning_ends_in_one_transaction():
    learning = build_plan(seed_table(), ENV, learning=True)
    settled = build_plan(seed_table(), ENV, learning, learning=False)
    commands = transaction(render(learning), render(settled))
    assert "flush map" in kinds(commands) and "flush chain" in kinds(commands)
    assert "delete table" not in kinds(commands)


def test_the_last_service_takes_the_tables_with_it():
    plan = build_plan(seed_table(), ENV)
    assert kinds(transaction(render(plan), render(build_plan(Table(), ENV, plan)))) == \
        ["delete table"]


def test_nat_and_ipv6():
    nat = VirtualService(ServiceKey.tcp(VIP, 80), "wrr", reals=(
        masq(RS1, 8080, 2), masq(RS2, 8080), masq("127.0.0.1", 8081, 0)))
    dr6 = VirtualService(ServiceKey.tcp("2001:db8:0:1::100", 80), "sh", reals=(
        RealServer("2001:db8:0:1::1", 80), RealServer("2001:db8:0:1::2", 80)))
    udp = VirtualService(ServiceKey.udp(VIP, 53), "rr", persistent=300,
                         netmask="255.255.255.0", reals=(RealServer(RS1, 53),))
    commands = transaction(None, render(build_plan(Table.of([nat, dr6, udp]), ENV)))
    check_golden("nat_ipv6_udp.json", commands)


def test_rebuild_starts_from_whatever_is_there():
    commands = replace_all(render(build_plan(seed_table(), ENV)))
    assert kinds(commands)[:4] == ["add table", "delete table", "add table", "delete table"]


@pytest.mark.parametrize("size", [1, 2, 5])
def test_never_a_slot_without_an_element(size):
    reals = [RealServer(f"198.51.100.{i}", 80) for i in range(1, size + 1)]
    env = ENV.of(["eth0"], {r.address: ENV.route(RS1) for r in reals})
    table = Table.of([VirtualService(ServiceKey.tcp(VIP, 80), "rr", reals=tuple(reals))])
    plan = build_plan(table, env)
    slots = render(plan).netdev.maps["m_tcp_198_51_100_100_80"].elements
    assert sorted(slots) == list(range(SLOTS))
