"""Groups held through a real etcd: Debian's etcd 3.4, three members in lab hosts.

server5, server6 and server7 each run an etcd member (PIDs this test started, in
the hosts' own namespaces). The calls run inside the hosts, as a node's daemon
would make them, through `vigil.cluster.etcd`: one node alone can create a
group's key, the key goes with its holder's lease, and a call is served while
one member is down but not once the majority is. The lease loop run by vigil's
daemon over these calls is in tests/lab/cluster/test_etcd_daemon_lab.py.
"""

from __future__ import annotations

import signal

import pytest

from vigil.testing import wait_until
from vigil.testing.etcd_cluster import calls

pytestmark = pytest.mark.lab

KEY = "/vigil/groups/IPaddr::198.51.100.100"


def test_one_node_alone_creates_the_key_and_it_goes_with_the_holders_lease(etcd):
    lab = etcd.lab
    [granted] = calls(lab, "server5", ["grant", 3])
    lease5, ttl = granted["ok"]
    assert ttl == 3
    [ours] = calls(lab, "server5", ["acquire", KEY, "server5.example.com", lease5])
    assert ours["ok"] == {"ours": True, "holder": "server5.example.com"}
    # server6 with a lease of its own: the key is taken, and by whom
    [granted6] = calls(lab, "server6", ["grant", 10])
    lease6 = granted6["ok"][0]
    taken, refreshed = calls(lab, "server6", ["acquire", KEY, "server6.example.com", lease6],
                             ["keepalive", lease6])
    assert taken["ok"] == {"ours": False, "holder": "server5.example.com"}
    assert refreshed["ok"] == 10
    # server5 stops refreshing: after its 3 s TTL the store drops the lease and the key
    wait_until(lambda: calls(lab, "server6", ["holder", KEY])[0]["ok"] is None, 15,
               "the key gone with server5's lease")
    [expired] = calls(lab, "server5", ["keepalive", lease5])
    assert expired["ok"] == 0
    [mine] = calls(lab, "server6", ["acquire", KEY, "server6.example.com", lease6])
    assert mine["ok"] == {"ours": True, "holder": "server6.example.com"}
    # a revoked lease takes its key at once
    calls(lab, "server6", ["revoke", lease6])
    assert calls(lab, "server7", ["holder", KEY])[0]["ok"] is None


def test_calls_are_served_with_one_member_down_and_refused_without_a_majority(etcd):
    lab = etcd.lab
    etcd.members["server5"].signal(signal.SIGKILL)  # a process this test started
    # server5's own member is the first endpoint: the call goes to the next one (once
    # the two left have elected a leader, if server5's member led)
    wait_until(lambda: "ok" in calls(lab, "server5", ["grant", 5])[0], 15,
               "a lease granted with server5's member down")
    etcd.members["server6"].signal(signal.SIGKILL)
    [refused] = calls(lab, "server7", ["grant", 5])
    assert "error" in refused and "no etcd endpoint answered" in refused["error"]
