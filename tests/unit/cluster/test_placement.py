"""Who wants a group under cluster_backend etcd: haresources' home node and auto_failback
with more than two nodes."""

from __future__ import annotations

import pytest

from vigil.cluster.placement import Placement, wants

HOME = Placement(home="server5", auto_failback=True, grace=10.0)
STICKY = Placement(home="server5", auto_failback=False, grace=10.0)


def ask(placement: Placement, me: str, **facts: object) -> bool:
    given = {"home_present": True, "holding": False, "free_since": None, "now": 100.0}
    given.update(facts)
    return wants(placement, me, **given)  # type: ignore[arg-type]


def test_the_home_node_always_wants_its_group_unless_in_standby():
    assert ask(HOME, "server5")
    assert ask(HOME, "SERVER5")  # node names compare as heartbeat's: without case
    assert not ask(HOME, "server5", standby=True)


def test_another_node_takes_the_group_while_the_home_node_is_down():
    assert ask(HOME, "server6", home_present=False)
    assert ask(HOME, "server7", home_present=False, holding=True)


@pytest.mark.parametrize("placement, keeps", [(HOME, False), (STICKY, True)])
def test_a_holder_gives_the_group_back_to_its_home_node_only_with_auto_failback_on(
        placement, keeps):
    assert ask(placement, "server6", holding=True) is keeps


def test_a_group_its_home_node_leaves_free_is_taken_after_the_grace():
    assert not ask(HOME, "server6", free_since=None)  # held by someone
    assert not ask(HOME, "server6", free_since=95.0)  # free for 5 s of 10
    assert ask(HOME, "server6", free_since=90.0)


def test_a_group_without_home_is_wanted_everywhere():
    anywhere = Placement(home=None, auto_failback=True, grace=10.0)
    assert ask(anywhere, "server6") and ask(anywhere, "server7", holding=True)
    assert not ask(anywhere, "server6", standby=True)


def test_a_node_that_sees_fewer_ping_nodes_than_the_best_is_not_fit():
    from vigil.cluster.placement import fitness

    assert not ask(HOME, "server5", fit=False)
    assert not ask(HOME, "server6", home_present=False, holding=True, fit=False)
    said = fitness({"server5": 1, "server6": 2, "server7": 2}, "server6", 2)
    assert said == {"server5": False, "server6": True, "server7": True}
    # this node's own count wins over what it last said
    assert fitness({"server5": 2, "server6": 2}, "server5", 1)["server5"] is False
    # no ping node reached anywhere: all equal, all fit (the group stays somewhere)
    assert set(fitness({"server5": 0, "server6": 0}, "server5", 0).values()) == {True}
    assert set(fitness({"server5": 3}, "server6", None).values()) == {True}
