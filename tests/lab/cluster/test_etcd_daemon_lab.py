"""vigil's daemon with `cluster_backend etcd`: three nodes, one haresources group, a real
etcd (three members on the same hosts), real addresses.

Each of server5, server6 and server7 runs `vigil heartbeat -f` on the same ha.cf
(three nodes, no medium), haresources (`server5.example.com IPaddr::VIP/24/eth0`)
and vigil.cf (`cluster_backend etcd`, lease TTL 4 s, stop 1.5 s ahead). The
test samples the three hosts' eth0 every 20 ms and asserts that never two hold
the VIP, through a clean stop of the holder, the home node's return (auto_failback
on), the home node cut off from the two others (and so from etcd's majority),
and the home node's crash.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from vigil.testing import wait_until
from vigil.testing.etcd_cluster import ENDPOINTS, VIP, Sampler, leader, start_member
from vigil.testing.pacemaker_cluster import NODES

pytestmark = pytest.mark.lab

VIGIL = str(Path(sys.executable).parent / "vigil")
TTL, MARGIN = 4, 1.5
HOME = "server5"


def configure(lab, ttl: float = TTL, margin: float = MARGIN, hacf: str = "") -> None:
    names = " ".join(f"{n}.example.com" for n in NODES)
    for node in NODES:
        host = lab.host(node)
        # a regular file stands in for /dev/watchdog (a real one would reset the machine)
        host.write_file("/run/watchdog", "")
        host.write_file("/etc/ha.d/ha.cf", f"node {names}\nauto_failback on\n"
                        "watchdog /run/watchdog\n" + hacf)
        host.write_file("/etc/ha.d/authkeys", "auth 1\n1 sha1 etcd-lab\n", mode=0o600)
        host.write_file("/etc/ha.d/haresources",
                        f"{HOME}.example.com IPaddr::{VIP}/24/eth0\n")
        host.write_file("/etc/ha.d/vigil.cf", "cluster_backend etcd\n"
                        f"etcd_endpoints {','.join(ENDPOINTS)}\n"
                        f"lease_ttl {ttl}\nlease_margin {margin}\nduplicate_probe off\n")


def start(lab, node):
    process = lab.host(node).spawn([VIGIL, "heartbeat", "-f"], name="vigil")
    wait_until(lambda: "heartbeat.ready" in process.output() or not process.alive(), 20,
               f"vigil ready on {node}")
    assert process.alive(), process.output()
    return process


def start_all(lab):
    """vigil on the three nodes, the VIP sampled, once the home node holds it: (the
    daemons, the sampler, what the daemons logged last)."""
    daemons = {node: start(lab, node) for node in NODES}
    sampler = Sampler(lab)

    def logs() -> str:
        return "\n".join(f"--- {n}\n{d.output()[-1500:]}" for n, d in daemons.items())

    try:
        wait_until(lambda: sampler.holders() == {HOME}, 30, lambda: "home holds it\n" + logs())
    except BaseException:
        stop_all(daemons, sampler)
        raise
    return daemons, sampler, logs


def stop_all(daemons, sampler) -> None:
    sampler.close()
    for daemon in daemons.values():
        daemon.stop(timeout=20)


def test_the_group_follows_its_lease_home_away_and_home_again_never_on_two_nodes(etcd):
    lab = etcd.lab
    configure(lab)
    check = lab.host("server6").run([VIGIL, "check"], check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    daemons, sampler, logs = start_all(lab)

    def moved_off(node: str) -> bool:
        return len(sampler.holders()) == 1 and node not in sampler.holders()

    try:
        status = lab.host("server6").run([VIGIL, "status"]).stdout
        assert f"held by {HOME}.example.com" in status and "reaches etcd's majority" in status

        def members() -> list[str]:
            said = lab.host("server6").run([VIGIL, "status"]).stdout.splitlines()
            return [line for line in said if line.startswith("etcd member ")]
        # each member asked how it is: the three up, one of them the leader
        wait_until(lambda: sum(": up" in m for m in members()) == 3, 15,
                   lambda: "the members in vigil status\n" + "\n".join(members()))
        assert sum(", leader" in m for m in members()) == 1, members()
        # a clean stop ends the lease at once: the group moves without waiting for its TTL
        stopped = time.monotonic()
        daemons[HOME].stop(timeout=20)
        wait_until(lambda: moved_off(HOME), 10, lambda: "moved on stop\n" + logs())
        on_stop = time.monotonic() - stopped
        # the watchdog was fed while the daemon ran, and disarmed by its clean stop
        fed = lab.host(HOME).path("/run/watchdog").read_bytes()
        assert len(fed) > 2 and fed.endswith(b"V") and set(fed[:-1]) == {0}, fed[-20:]
        # the home node back: the group returns (auto_failback on)
        daemons[HOME] = start(lab, HOME)
        wait_until(lambda: sampler.holders() == {HOME}, 20, lambda: "given back\n" + logs())
        # cut off from etcd's majority: it stops the VIP before another node can take it
        cut = time.monotonic()
        for other in NODES[1:]:
            lab.partition(HOME, other)
        wait_until(lambda: moved_off(HOME), TTL + 10, lambda: "moved on a cut\n" + logs())
        on_cut = time.monotonic() - cut
        for other in NODES[1:]:
            lab.heal(HOME, other)
        healed = time.monotonic()
        wait_until(lambda: sampler.holders() == {HOME}, 30, lambda: "home again\n" + logs())
        on_heal = time.monotonic() - healed
        # the home node loses power, its etcd member with it
        crashed = time.monotonic()
        lab.crash(HOME)
        wait_until(lambda: moved_off(HOME), 3 * TTL + 10, lambda: "moved on a crash\n" + logs())
        on_crash = time.monotonic() - crashed
    finally:
        stop_all(daemons, sampler)
    assert sampler.doubled() == [], f"two holders at once: {sampler.doubled()[:3]}"
    print(f"cluster_backend etcd (TTL {TTL} s, margin {MARGIN} s): the VIP moved "
          f"{on_stop:.2f} s after a clean stop, {on_cut:.2f} s after a cut, "
          f"{on_crash:.2f} s after a crash; home {on_heal:.2f} s after the cut healed")
    assert on_stop <= 3
    # when the cut-off or crashed node's member led etcd, the new leader gives every lease
    # a whole TTL again after its election (etcd's rule): 7.6 s once measured for a cut
    assert on_cut <= 2 * TTL + 3
    assert on_crash <= 3 * TTL + 2


def test_etcd_losing_its_leader_moves_nothing_and_losing_its_majority_runs_nothing(etcd):
    """The leader's member killed: the holder keeps the group (a refresh or two may fail
    during the election, well inside TTL - margin). A second member killed: no majority,
    so no lease can be refreshed: the holder stops the group and nobody else starts it.
    The members back: the group runs at home again."""
    lab = etcd.lab
    ttl, margin = 8, 2  # a refresh every 2.7 s, the stop 6 s after the last one
    configure(lab, ttl, margin)
    daemons, sampler, logs = start_all(lab)
    try:
        led = leader(lab)
        assert led is not None
        etcd.members[led].signal(signal.SIGKILL)  # a process this test started
        killed_at = time.monotonic()
        wait_until(lambda: leader(lab) not in (None, led), 15, "a new etcd leader")
        time.sleep(max(0.0, killed_at + 2 * ttl - time.monotonic()))  # a negative window
        after = [holders for at, holders in sampler.samples if at >= killed_at]
        assert after and all(h == {HOME} for h in after), \
            f"the group moved or stopped when etcd's leader was lost:\n{logs()}"
        # a second member gone: no majority
        second = next(n for n in NODES if n != led and etcd.members[n].alive())
        etcd.members[second].signal(signal.SIGKILL)
        lost = time.monotonic()
        wait_until(lambda: sampler.holders() == set(), ttl + 3,
                   lambda: "the holder stops without etcd's majority\n" + logs())
        stopped_after = time.monotonic() - lost
        time.sleep(ttl)  # a negative window: nobody takes what nobody may hold
        assert [h for at, h in sampler.samples if at >= lost + stopped_after + 0.1
                and h] == [], f"a node held the group without etcd's majority:\n{logs()}"
        for node in (led, second):
            etcd.members[node] = start_member(lab, node)
        wait_until(lambda: sampler.holders() == {HOME}, 60,
                   lambda: "home again once etcd is back\n" + logs())
    finally:
        stop_all(daemons, sampler)
    assert sampler.doubled() == [], f"two holders at once: {sampler.doubled()[:3]}"
    print(f"etcd majority lost (TTL {ttl} s, margin {margin} s): the holder stopped the "
          f"group {stopped_after:.2f} s after")


#: the lab's gateway, the tutorial's ping node
PING = "198.51.100.250"


def test_a_node_that_sees_fewer_ping_nodes_gives_the_group_away(etcd):
    """ha.cf's ping node keeps heartbeat's meaning on etcd: the home node cut off from the
    gateway reaches fewer ping nodes than the others, so it gives the group up and another
    node takes it; healed, the group comes home (auto_failback on)."""
    lab = etcd.lab
    configure(lab, hacf=f"ping {PING}\n")
    daemons, sampler, logs = start_all(lab)
    try:
        status = lab.host(HOME).run([VIGIL, "status", "--json"]).stdout
        assert '"here": 1' in status, status
        cut = time.monotonic()
        lab.partition(HOME, "gateway")
        wait_until(lambda: len(sampler.holders()) == 1 and HOME not in sampler.holders(), 20,
                   lambda: "moved away from the node without its ping node\n" + logs())
        moved = time.monotonic() - cut
        lab.heal(HOME, "gateway")
        wait_until(lambda: sampler.holders() == {HOME}, 30, lambda: "home again\n" + logs())
    finally:
        stop_all(daemons, sampler)
    assert sampler.doubled() == [], f"two holders at once: {sampler.doubled()[:3]}"
    print(f"etcd backend: the group left the node that lost its ping node {moved:.2f} s "
          "after the cut")
