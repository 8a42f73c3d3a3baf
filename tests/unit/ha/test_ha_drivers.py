"""The group drivers: the agents layer behind the GroupDriver interface, and the test driver."""

from __future__ import annotations

import asyncio

from vigil.agents.options import AgentOptions, AgentPaths
from vigil.ha.drivers import AgentsGroupDriver, make_driver
from vigil.ha.groups import Group, GroupDriver, groups_from_refs
from vigil.ha.testdriver import TestGroupDriver, TestIPaddrAgent, agent_for_resource, parse_ipaddr


def test_the_agents_layer_drives_a_group_through_the_interface(tmp_path):
    driver = AgentsGroupDriver(AgentOptions(stop_retries=1, stop_retry_delay=0),
                               AgentPaths(state_dir=tmp_path))
    assert isinstance(driver, GroupDriver)
    group = Group(0, "n1", ("Delay::0::0", "MailTo::root"))

    async def scenario() -> list[bool]:
        results = [await driver.held(group), await driver.start(group),
                   await driver.held(group)]
        await driver.announce(group)
        results += [await driver.stop(group), await driver.held(group)]
        return results

    assert asyncio.run(scenario()) == [False, True, True, True, False]


def test_agents_are_built_from_the_parsed_resources_not_from_their_labels(tmp_path):
    from vigil.config import haresources

    model = haresources.parse("n1 IPaddr2::2001:db8::10/64/eth0 ocf:heartbeat:Dummy::state=/x\n",
                              "haresources")
    [group] = groups_from_refs([(g.node, g.resources) for g in model.groups])
    assert group.resources == tuple(r.label for r in model.groups[0].resources)
    runtime = AgentsGroupDriver(paths=AgentPaths(state_dir=tmp_path)).runtime(group)
    built = [(agent.name, tuple(agent.args)) for agent in runtime.agents]
    assert built == [(r.name, r.args) for r in model.groups[0].resources]


def test_driver_registry():
    assert isinstance(make_driver("test"), TestGroupDriver)
    assert isinstance(make_driver("auto"), AgentsGroupDriver)


def test_test_driver_reads_ipaddr_arguments():
    assert parse_ipaddr(("198.51.100.100/24/eth0",)) == ("198.51.100.100", 24, "eth0")
    assert parse_ipaddr(("2001:db8::100",)) == ("2001:db8::100", None, None)
    assert isinstance(agent_for_resource("198.51.100.100"), TestIPaddrAgent)
    assert isinstance(agent_for_resource("IPaddr2::198.51.100.100/24"), TestIPaddrAgent)


def test_a_hand_off_announces_the_holders_mac_from_our_own_nic():
    from vigil.net import packets

    reply, request = packets.handoff_arp_pair("02:00:00:00:00:05", "198.51.100.100",
                                              "02:00:00:00:00:06")
    for frame, op in ((reply, packets.ARP_REPLY), (request, packets.ARP_REQUEST)):
        arp = packets.parse_arp(frame)
        assert arp is not None and arp.op == op
        assert arp.sender_mac == "02:00:00:00:00:05" and arp.sender_ip == "198.51.100.100"
        assert arp.target_ip == "198.51.100.100"
        assert arp.eth_src == "02:00:00:00:00:06"  # no switch learns the holder's MAC here
        assert frame[:6] == b"\xff" * 6


def test_a_reload_gives_every_group_and_resource_the_new_options():
    from vigil.agents.options import AgentOptions
    from vigil.ha.drivers import AgentsGroupDriver
    from vigil.ha.groups import groups_from_lines

    [group] = groups_from_lines([("n1", ["MailTo::root@localhost"])])
    driver = AgentsGroupDriver(AgentOptions(stop_retries=10))
    runtime = driver.runtime(group)
    new = AgentOptions(stop_retries=2, smtp_port=2525)
    driver.reconfigure(new)
    assert driver.runtime(group) is runtime and runtime.options is new
    assert all(agent.options is new for agent in runtime.agents)
