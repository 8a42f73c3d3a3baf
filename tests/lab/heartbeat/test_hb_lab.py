"""vigil heartbeat in the lab: two directors, a client, the gateway as ping node.

Each test starts real daemons in the lab's hosts and judges by what the client
sees (which host answers on the VIP) and where the VIP is configured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from vigil.membership.auth import AuthKeys
from vigil.membership.codec import PacketCodec
from vigil.membership.messages import Envelope, Shutdone, Status
from vigil.testing import wait_until

pytestmark = pytest.mark.lab

PING = "ping 198.51.100.250"
VIGIL = str(Path(sys.executable).parent / "vigil")


def test_both_nodes_see_each_other_and_report_links_and_groups(hb):
    hb.start_both()
    status = hb.status("server6")
    peer = hb.peer("server6")
    assert peer["status"] == "active" and peer["vigil"] is True
    assert {link["name"]: link["status"] for link in peer["links"]} == {"eth0": "up",
                                                                       "eth1": "up"}
    assert status["groups"][0]["holder"] == ["server5.example.com"]
    text = hb.lab.host("server6").run([VIGIL, "status"])
    assert "group IPaddr::198.51.100.100/24/eth0 (home server5.example.com): run by " \
           "server5.example.com" in text.stdout


def test_kill_9_of_the_active_daemon_moves_the_vip_to_the_peer(hb):
    hb.start_both()
    hb.daemons["server5"].kill()
    hb.wait_client("server6", timeout=10)
    assert "server6" in hb.holders()


def test_both_links_cut_is_a_takeover(hb):
    hb.start_both()
    hb.lab.link_down("server5")  # eth0 and eth1: server5 is gone for everyone
    hb.wait_client("server6", timeout=10)
    dead = hb.peer("server6")
    assert dead["status"] == "dead"
    assert {link["status"] for link in dead["links"]} == {"dead"}


def test_one_of_two_links_cut_is_no_takeover(hb):
    hb.start_both()
    hb.lab.link_down("server5", "hb")
    wait_until(lambda: {ln["name"]: ln["status"] for ln in hb.peer("server6")["links"]}
               == {"eth0": "up", "eth1": "dead"}, 10, "eth1 reported dead")
    time.sleep(2.0)  # a negative: twice the deadtime with one link cut
    assert hb.holders() == {"server5"}
    assert hb.peer("server6")["status"] == "active"
    assert hb.client_answer() == "server5"
    hb.lab.link_up("server5", "hb")
    wait_until(lambda: all(ln["status"] == "up" for ln in hb.peer("server6")["links"]), 10,
               "eth1 back up")


def test_a_healed_partition_leaves_one_holder_and_the_client_reaches_it(hb):
    hb.start_both()
    hb.lab.partition("server5", "server6")
    hb.wait_holders({"server5", "server6"}, 10)  # split brain: no quorum in a pair
    hb.lab.heal("server5", "server6")
    hb.wait_holders({"server5"}, 10)  # the home node keeps it, the other stops it
    hb.wait_client("server5", timeout=10)  # the keeper re-announced: ARP caches healed
    # the daemon logs through a queue: the line may reach the file a moment after the act
    wait_until(lambda: "split brain on IPaddr::198.51.100.100/24/eth0: the peer keeps it"
               in hb.daemons["server6"].output(), 5,
               lambda: "server6 logs the split brain\n" + hb.logs())


def test_standby_and_takeover_move_the_group(hb):
    hb.start_both()
    done = hb.lab.host("server5").run([VIGIL, "standby"])
    assert "handing IPaddr::198.51.100.100/24/eth0" in done.stdout
    hb.wait_holders({"server6"}, 10)
    hb.wait_client("server6")
    done = hb.lab.host("server5").run([VIGIL, "takeover", "local"])
    assert "asking for IPaddr::198.51.100.100/24/eth0" in done.stdout
    hb.wait_holders({"server5"}, 10)
    hb.wait_client("server5")


@pytest.mark.parametrize("mode", ["on", "off"])
def test_auto_failback(hb, mode):
    hb.auto_failback = mode
    hb.start_both()
    hb.lab.crash("server5")  # power loss: the address goes with it
    hb.wait_client("server6", timeout=10)
    hb.lab.boot("server5")
    hb.responder("server5")
    hb.start("server5", configure=False)  # /etc survived the crash
    wait_until(lambda: hb.peer("server6")["status"] == "active", 15, "server5 back")
    if mode == "on":
        hb.wait_holders({"server5"}, 10)
        hb.wait_client("server5")
    else:
        time.sleep(1.5)  # a negative: give a failback the time it would need
        assert hb.holders() == {"server6"}


def test_the_node_that_loses_the_ping_node_gives_its_groups_away(hb):
    hb.extra = PING
    hb.start_both()
    wait_until(lambda: hb.status("server5")["ping_reach"] == 1 and
               hb.status("server5")["peer_ping_reach"] == 1, 10, "both reach the gateway")
    hb.lab.partition("server5", "gateway")
    hb.wait_holders({"server6"}, 15)
    hb.wait_client("server6")
    assert "peer reaches more ping nodes" in hb.daemons["server5"].output()


def test_graceful_shutdown_hands_over_at_once(hb):
    hb.start_both()
    started = time.monotonic()
    hb.daemons["server5"].signal(signal.SIGTERM)
    hb.wait_holders({"server6"}, 10)
    assert time.monotonic() - started < 1.0  # not after deadtime: shutdone says it at once
    assert hb.daemons["server5"].wait(10)
    wait_until(lambda: "shut down and released its groups" in hb.daemons["server6"].output(),
               5, "server6 logging the shutdone")


def test_forged_and_replayed_packets_from_a_third_host_change_nothing(hb):
    hb.start_both()
    captured = hb.capture("client", 40)  # both nodes' heartbeats, broadcast on the lan
    # forged: a "shutdone" and a dead status in server5's name, with a guessed key
    forger = PacketCodec(AuthKeys.from_pairs(1, {1: ("sha1", "guessed")}))
    env = Envelope(src="server5.example.com", hg=2**31, ts=int(time.time()), seq=10**6)
    forged = [forger.pack(Shutdone(env=env)),
              forger.pack(Status(env=dataclasses.replace(env, seq=10**6 + 1),
                                 status="dead"))]
    garbage = [b"###\n" + bytes(range(200)), b"hello"]
    before = hb.status("server6")["rejected"]
    wait_until(lambda: hb.status("server6")["counters"]["accepted"] > 200, 30,
               "the captured packets to become old (beyond the duplicate window)")
    for address in ("198.51.100.255", "198.51.100.6"):
        hb.inject("client", forged + garbage + captured, address)
    wait_until(lambda: hb.status("server6")["rejected"]["bad_auth"] >= before["bad_auth"] + 4,
               10, "forged packets counted")
    after = hb.status("server6")["rejected"]
    assert after["malformed"] >= before["malformed"] + 4
    assert after["stale"] + after["replayed"] > before["stale"] + before["replayed"]
    assert hb.holders() == {"server5"}
    assert hb.peer("server6")["status"] == "active"
    assert hb.client_answer() == "server5"


def test_a_shutdone_captured_before_a_restart_is_refused_after_it(hb):
    hb.start_both()
    # a third host records server5's goodbye while server5 restarts (a new generation)
    with hb.lab.host("client").entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", 694))
        sock.settimeout(10)
        hb.daemons["server5"].signal(signal.SIGTERM)
        assert hb.daemons["server5"].wait(10)
        goodbye = []
        while not goodbye:
            packet = sock.recv(65535)
            if b"t=shutdone" in packet:
                goodbye.append(packet)
    finally:
        sock.close()
    hb.wait_holders({"server6"}, 10)
    hb.start("server5", configure=False)
    hb.wait_holders({"server5"}, 15)  # auto_failback on
    wait_until(lambda: hb.peer("server6")["status"] == "active", 10, "server5 back")
    # server6 restarts and hears only the rogue at first (server5's packets are dropped
    # on server6 until the replay is done; initdead is long enough not to matter)
    hb.daemons["server6"].signal(signal.SIGTERM)
    assert hb.daemons["server6"].wait(10)
    server6 = hb.lab.host("server6")
    server6.run(["nft", "add table inet rogue_test; add chain inet rogue_test in "
                 "{ type filter hook input priority 0; }; add rule inet rogue_test in "
                 "udp dport 694 ip saddr { 198.51.100.5, 203.0.113.5 } drop"])
    hb.initdead = "20"
    hb.start("server6")
    hb.inject("client", goodbye, "198.51.100.255")
    hb.inject("client", goodbye, "198.51.100.6")
    wait_until(lambda: hb.status("server6")["rejected"]["replayed"] >= 1, 10,
               lambda: "the replayed goodbye refused\n" + hb.logs())
    assert hb.holders() == {"server5"}
    assert "shut down and released its groups" not in hb.daemons["server6"].output()
    server6.run(["nft", "delete table inet rogue_test"])
    wait_until(lambda: hb.peer("server6")["status"] == "active", 10, "server5 heard again")
    assert hb.holders() == {"server5"}
    assert hb.client_answer() == "server5"


def test_respawn_programs_start_with_the_daemon_come_back_and_end_with_it(hb):
    hb.extra = "env GREETING=from-ha-cf\nrespawn root /etc/ha.d/client.sh --flag"
    for name in ("server5", "server6"):
        hb.lab.host(name).write_file(
            "/etc/ha.d/client.sh", "#!/bin/sh\necho $$ $GREETING $1 >> /run/client.pids\n"
            "exec sleep 600\n", mode=0o755)
    hb.start_both()
    server6 = hb.lab.host("server6")

    def started() -> list[list[str]]:
        done = server6.run(["cat", "/run/client.pids"], check=False)
        return [line.split() for line in done.stdout.splitlines()]

    wait_until(lambda: len(started()) == 1, 10, "the program started")
    first = started()[0]
    assert first[1:] == ["from-ha-cf", "--flag"]
    server6.run(["kill", "-9", first[0]])
    wait_until(lambda: len(started()) == 2, 10, "the program started again")
    second = started()[1][0]
    assert "respawn.exited" in hb.daemons["server6"].output()
    hb.daemons["server6"].signal(signal.SIGTERM)
    assert hb.daemons["server6"].wait(15)
    wait_until(lambda: server6.run(["kill", "-0", second], check=False).returncode != 0, 10,
               "the program ended with the daemon")


def test_the_watchdog_is_fed_while_the_daemon_runs_and_disarmed_by_a_clean_stop(hb):
    # a regular file stands in for /dev/watchdog (a real one would reset the machine)
    hb.extra = "watchdog /run/watchdog"
    for name in ("server5", "server6"):
        hb.lab.host(name).write_file("/run/watchdog", "")
    hb.start_both()
    server6 = hb.lab.host("server6")

    def fed() -> bytes:
        return server6.path("/run/watchdog").read_bytes()

    wait_until(lambda: len(fed()) >= 20, 10, "the watchdog fed every keepalive")
    assert set(fed()) == {0}
    hb.daemons["server6"].signal(signal.SIGSTOP)  # hung: the feeding stops
    try:
        stopped_at = len(fed())
        time.sleep(0.5)  # a negative: five keepalives without a write
        assert len(fed()) <= stopped_at + 1
    finally:
        hb.daemons["server6"].signal(signal.SIGCONT)
    wait_until(lambda: len(fed()) > stopped_at + 5, 10, "fed again")
    # SIGTERM again and again until it exits (an init script's retries): the signals that
    # come during the stop must not kill the daemon before it disarms the watchdog
    daemon = hb.daemons["server6"]
    deadline = time.monotonic() + 15
    while daemon.alive() and time.monotonic() < deadline:
        daemon.signal(signal.SIGTERM)
    assert not daemon.alive()
    assert fed().endswith(b"V")  # the magic close
    hb.daemons["server5"].kill()  # killed: no magic close, the watchdog would fire
    assert not hb.lab.host("server5").path("/run/watchdog").read_bytes().endswith(b"V")


FENCE_DUMMY = "/usr/sbin/fence_dummy"


@pytest.mark.skipif(not Path(FENCE_DUMMY).exists(), reason="Debian's fence-agents is not installed")
@pytest.mark.parametrize("device", ["file", "fail"])
def test_a_dead_peer_is_fenced_by_a_fence_agent_before_the_takeover(hb, device):
    # fence_dummy's "power" is a status file on the fencing node: on, then off once fenced
    for name, peer in (("server5", "server6"), ("server6", "server5")):
        host = hb.lab.host(name)
        hb.configure(name)
        host.write_file("/run/power-" + peer, "on")
        host.write_file("/etc/ha.d/vigil.cf", "duplicate_probe off\n"
                        f"fence {peer}.example.com\n    agent fence_dummy\n"
                        f"    type {device}\n    status_file /run/power-{peer}\n"
                        # how long the agent waits for the power to go off (20 s unset)
                        "    power_timeout 2\n")
    for name in ("server5", "server6"):
        hb.responder(name)
    for name in ("server5", "server6"):
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    # at start each node asks its fence device `monitor`, as `vigil check` does (both
    # of fence_dummy's devices answer it: the failing one fails only to power off)
    asked = "fence.monitor node=server5.example.com agent=fence_dummy ok=True"
    wait_until(lambda: asked in hb.daemons["server6"].output(), 20,
               lambda: f"server6 logs '{asked}'\n" + hb.logs())
    hb.lab.crash("server5")
    server6 = hb.lab.host("server6")
    if device == "file":
        hb.wait_client("server6", timeout=30)
        assert server6.read_file("/run/power-server5").strip() == "off"
        # the log is written by a thread of its own: the VIP may answer before the line is out
        wait_until(lambda: "fenced=True" in hb.daemons["server6"].output(), 10,
                   lambda: "server6 logs the fence's result\n" + hb.logs())
    else:  # the device fails: no takeover, and the log says why
        wait_until(lambda: hb.daemons["server6"].output().count("fence.result") >= 2, 60,
                   "two fence attempts")
        assert hb.holders() == set()
        assert "fenced=False" in hb.daemons["server6"].output()


def test_notify_command_runs_on_a_death_and_a_takeover(hb):
    events = {name: hb.lab.directory / f"events-{name}" for name in ("server5", "server6")}
    for name in ("server5", "server6"):
        host = hb.lab.host(name)
        hb.configure(name)
        host.write_file("/etc/vigil-notify",
                        f'#!/bin/sh\necho "$1 $VIGIL_TARGET $HA_CURHOST" >> {events[name]}\n',
                        mode=0o755)
        host.write_file("/etc/ha.d/vigil.cf", "duplicate_probe off\n"
                        "notify_command /etc/vigil-notify\n")
        hb.responder(name)
    for name in ("server5", "server6"):
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    wait_until(lambda: events["server5"].exists()
               and "group.started" in events["server5"].read_text(), 10,
               "server5 notified of its group's start")
    hb.lab.crash("server5")
    hb.wait_client("server6", timeout=10)

    def told() -> list[str]:
        return events["server6"].read_text().splitlines() if events["server6"].exists() else []

    wait_until(lambda: {"peer.dead server5.example.com server6.example.com",
                        f"group.started IPaddr::{VIP}/24/eth0 server6.example.com"}
               <= set(told()), 10, lambda: f"server6's notifications: {told()}")


def test_sighup_applies_a_changed_ha_cf_without_moving_groups(hb):
    hb.start_both()
    assert hb.peer("server6")["deadtime"] == 1.0
    hb.deadtime = "2"
    hb.keepalive = "200ms"
    for name in ("server5", "server6"):
        hb.configure(name)
    hb.daemons["server5"].signal(signal.SIGHUP)
    wait_until(lambda: hb.peer("server6")["deadtime"] == 2.0, 10,
               "server6 using server5's new advertised deadtime")
    wait_until(lambda: hb.status("server5")["timings"]["keepalive"] == 0.2, 10, "reloaded")
    said = hb.daemons["server5"].output()
    assert "config.reloaded" in said
    # each change is logged, and only the changes
    assert 'config.changed section=ha.cf change="ha.cf: deadtime changed from 1s to 2s"' in said
    assert 'ha.cf: keepalive changed from 100ms to 200ms' in said
    assert all("section=ha.cf" in line for line in said.splitlines()
               if "config.changed" in line), said
    assert hb.holders() == {"server5"}
    assert "stopping group" not in said
    assert hb.client_answer() == "server5"
    # the same files again: nothing to apply, and nothing is
    before = len(hb.daemons["server5"].output())
    hb.daemons["server5"].signal(signal.SIGHUP)
    wait_until(lambda: "config.unchanged" in hb.daemons["server5"].output()[before:], 10,
               "the second reload found nothing to apply")
    assert "config.reloaded" not in hb.daemons["server5"].output()[before:]


@pytest.mark.parametrize("media", [
    "mcast eth0 239.192.0.94 694 1 0\nmcast6 eth1 ff12::694 694 1 0",
    "ucast6 eth0 2001:db8:0:1::5\nucast6 eth0 2001:db8:0:1::6\nbcast eth1",
], ids=["mcast+mcast6", "ucast6+bcast"])
def test_every_medium_carries_heartbeats(hb, media):
    hb.media = media
    hb.start_both()
    links = {ln["name"]: ln["status"] for ln in hb.peer("server5")["links"]}
    assert links == {"eth0": "up", "eth1": "up"}


HEARTBEAT = "/usr/libexec/heartbeat/heartbeat"
NODES_OF_PAIR = ("server5", "server6")
VIP = "198.51.100.100"


def heartbeat_pids(host) -> list[int]:
    """The Debian heartbeat processes of one lab host (found by executable, killed by pid)."""
    found = []
    for pid in host.pids():
        try:
            if Path(f"/proc/{pid}/exe").resolve() == Path(HEARTBEAT):
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path(HEARTBEAT).exists(), reason="Debian's heartbeat is not installed")
def test_debian_heartbeat_and_vigil_see_each_other_and_notice_deaths(hb):
    hb.haresources = ""  # membership only: heartbeat 3.0.6 and vigil as peers
    for name in ("server5", "server6"):
        hb.configure(name)
        hb.broadcast_addresses(name)
    server5 = hb.lab.host("server5")
    server5.write_file("/etc/ha.d/ha.cf", "logfile /var/log/ha-log\n" + hb.hacf())
    heartbeat = server5.spawn([HEARTBEAT], name="heartbeat",
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    hb.daemons["heartbeat"] = heartbeat
    hb.start("server6", configure=False)

    def heartbeat_says(node: str) -> str:
        return server5.run(["cl_status", "nodestatus", node], check=False).stdout.strip()

    wait_until(lambda: heartbeat_says("server6.example.com") == "active", 30,
               lambda: "heartbeat seeing vigil active\n" + server5.run(
                   "tail -30 /var/log/ha-log", check=False).stdout)
    wait_until(lambda: hb.peer("server6")["status"] == "active", 10, "vigil seeing heartbeat")
    assert hb.peer("server6")["vigil"] is False
    wait_until(lambda: {ln["name"]: ln["status"] for ln in hb.peer("server6")["links"]}
               == {"eth0": "up", "eth1": "up"}, 10, "both links up (bcast and ucast)")
    links = server5.run(["cl_status", "listhblinks", "server6.example.com"]).stdout.split()
    assert set(links) == {"eth0", "eth1"}

    # vigil's cl_status verbs answer as heartbeat's own cl_status does, about the same pair
    server6 = hb.lab.host("server6")

    def both(words: list[str], other: dict[str, str] | None = None) -> tuple:
        theirs = server5.run(["cl_status", *words], check=False)
        mine = server6.run([VIGIL, "status", *[(other or {}).get(w, w) for w in words]],
                           check=False)
        return (theirs.stdout, theirs.returncode), (mine.stdout, mine.returncode)

    peer_of = {"server6.example.com": "server5.example.com"}
    for words in (["hbstatus"], ["nodestatus", "server6.example.com"],
                  ["nodetype", "server6.example.com"],
                  ["hblinkstatus", "server6.example.com", "eth0"],
                  ["nodestatus", "-m", "server6.example.com"],
                  ["hbparameter", "-p", "deadtime"], ["hbparameter", "-p", "keepalive"],
                  ["hbparameter", "-p", "udpport"], ["hbparameter", "-p", "nosuch"],
                  ["nosuchverb"]):
        theirs, mine = both(words, peer_of)
        if words[0] == "nodestatus" and "-m" in words:  # the sentence names the node asked
            theirs = (theirs[0].replace("server6", "server5"), theirs[1])
        assert mine == theirs, (words, theirs, mine)
    theirs, mine = both(["listnodes"])
    assert sorted(mine[0].split()) == sorted(theirs[0].split()) and mine[1] == theirs[1] == 0

    hb.daemons["server6"].kill()  # vigil dies: heartbeat notices
    wait_until(lambda: heartbeat_says("server6.example.com") == "dead", 10,
               "heartbeat noticing vigil's death")
    hb.start("server6", configure=False)  # and sees it come back (a new generation)
    wait_until(lambda: heartbeat_says("server6.example.com") == "active", 30,
               "heartbeat seeing vigil back")
    wait_until(lambda: hb.peer("server6")["status"] == "active", 10, "vigil seeing heartbeat")

    for pid in heartbeat_pids(server5):  # heartbeat dies: vigil notices
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: hb.peer("server6")["status"] == "dead", 10,
               "vigil noticing heartbeat's death")
    assert "peer.dead node=server5.example.com" in hb.daemons["server6"].output()


def test_detached_daemon_pid_file_status_and_stop(hb):
    hb.haresources = ""
    hb.configure("server5")
    server5 = hb.lab.host("server5")
    started = server5.run([VIGIL, "heartbeat"], timeout=30)  # forks, returns once ready
    assert "vigil heartbeat started (pid" in started.stdout
    pid = int(server5.read_file("/run/vigil/heartbeat.pid"))  # in the host's pid namespace
    assert server5.run(["kill", "-0", str(pid)], check=False).returncode == 0
    assert server5.run([VIGIL, "heartbeat", "-s"]).stdout.startswith(
        f"vigil heartbeat OK [pid {pid}]")
    again = server5.run([VIGIL, "heartbeat"], check=False, timeout=30)
    assert again.returncode != 0 and "already runs" in again.stderr
    status = json.loads(server5.run([VIGIL, "status", "--json"]).stdout)
    assert status["daemon"]["pid"] == pid
    assert str(status["daemon"]["realtime"].get("scheduler", "")).startswith(
        ("SCHED_RR", "refused"))
    stopped = server5.run([VIGIL, "heartbeat", "-k"], timeout=60)
    assert "stopped" in stopped.stdout
    assert server5.run(["kill", "-0", str(pid)], check=False).returncode != 0
    assert server5.run([VIGIL, "heartbeat", "-s"], check=False).returncode == 3


WEBSERVICE = """#!/bin/sh
# An LSB-style resource script: the lab's web responder as a service.
PIDFILE=/run/webservice.pid
running() { [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }
case "$1" in
  start) running && exit 0
         setsid {python} /etc/ha.d/webservice.py >/dev/null 2>&1 < /dev/null &
         echo $! > $PIDFILE; exit 0;;
  stop) running && kill "$(cat $PIDFILE)"; rm -f $PIDFILE; exit 0;;
  status) if running; then echo running; exit 0; else echo stopped; exit 3; fi;;
  *) exit 2;;
esac
"""


def test_a_service_that_dies_moves_its_group_to_the_peer(hb):
    hb.haresources = "server5.example.com IPaddr::198.51.100.100/24/eth0 webservice\n"
    for name in ("server5", "server6"):
        hb.configure(name)
        host = hb.lab.host(name)
        host.write_file("/etc/ha.d/webservice.py", hb.responder_code)
        host.write_file("/etc/ha.d/resource.d/webservice",
                        WEBSERVICE.replace("{python}", sys.executable), mode=0o755)
        host.write_file("/etc/ha.d/vigil.cf", "duplicate_probe off\nrestart_limit 0\n"
                        "agent webservice\n    monitor_interval 500ms\n")
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    hb.wait_client("server5")
    server5 = hb.lab.host("server5")
    pid = server5.read_file("/run/webservice.pid").strip()
    server5.run(["kill", "-9", pid])  # the service dies; the node is fine
    hb.wait_client("server6", timeout=15)
    assert hb.holders() == {"server6"}
    logs = hb.daemons["server5"].output()
    assert "failed here" in logs and "stopping it so that the peer can take it" in logs


def debian_heartbeat_on_server5(hb):
    """Both nodes configured; server5's ha.cf as heartbeat 3.0.6 reads it (its log file).
    Returns server5, where the test starts heartbeat when it wants it."""
    for name in ("server5", "server6"):
        hb.configure(name)
        hb.broadcast_addresses(name)
        hb.responder(name)
    server5 = hb.lab.host("server5")
    server5.write_file("/etc/ha.d/ha.cf", "logfile /var/log/ha-log\n" + hb.hacf())
    return server5


@pytest.mark.skipif(not Path(HEARTBEAT).exists(), reason="Debian's heartbeat is not installed")
def test_a_group_moves_between_debian_heartbeat_and_vigil(hb):
    """vigil on server6 and heartbeat 3.0.6 on server5 share the VIP group (nice_failback)."""
    server5 = debian_heartbeat_on_server5(hb)
    hb.start("server6", configure=False)  # alone: initdead passes, it takes the group
    hb.wait_holders({"server6"}, 20)

    heartbeat = server5.spawn([HEARTBEAT], name="heartbeat",
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    hb.daemons["heartbeat"] = heartbeat

    def ha_log() -> str:
        return server5.run("tail -40 /var/log/ha-log", check=False).stdout

    # auto_failback on: vigil asks heartbeat to take its group (ask_resources me),
    # heartbeat agrees (other), vigil stops it, says done, heartbeat starts it
    hb.wait_holders({"server5"}, 40)
    hb.wait_client("server5")
    logs = hb.daemons["server6"].output()
    assert "standby.asked" in logs and "standby.agreed" in logs

    # vigil takeover: hb_takeover makes heartbeat go standby; vigil takes the group
    done = hb.lab.host("server6").run([VIGIL, "takeover"])
    assert "asking for IPaddr::198.51.100.100/24/eth0" in done.stdout
    wait_until(lambda: hb.holders() == {"server6"}, 40,
               lambda: f"the VIP on server6 (now {hb.holders()})\n{ha_log()}\n" + hb.logs())
    hb.wait_client("server6")
    assert "standby.accepted" in hb.daemons["server6"].output()


@pytest.mark.skipif(not Path(HEARTBEAT).exists(), reason="Debian's heartbeat is not installed")
def test_hb_standby_on_debian_heartbeat_hands_its_group_to_vigil(hb):
    """The rolling upgrade's step: heartbeat 3.0.6 on server5 holds the group, vigil runs
    on server6 (upgraded first); `hb_standby` on server5 hands the group to vigil, so that
    server5 can be upgraded next, and `hb_takeover` there brings it back. A request made
    before heartbeat has settled is ignored by heartbeat itself; vigil must ignore it too,
    so that the next one, once settled, works."""
    server5 = debian_heartbeat_on_server5(hb)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    hb.daemons["heartbeat"] = server5.spawn([HEARTBEAT], name="heartbeat", env=env)

    def ha_log() -> str:
        return server5.run("tail -40 /var/log/ha-log", check=False).stdout

    hb.wait_holders({"server5"}, 40)
    hb.start("server6", configure=False)
    wait_until(lambda: "peer.alive" in hb.daemons["server6"].output(), 30,
               lambda: "vigil sees heartbeat\n" + hb.logs())
    # wait for both sides to settle, as an operator would (cl_status: the peer active)
    wait_until(lambda: server5.run(["cl_status", "nodestatus", "server6.example.com"],
                                   check=False).stdout.strip() == "active", 30,
               lambda: f"heartbeat sees vigil active\n{ha_log()}")
    def settled(holds: set[str]) -> None:
        """heartbeat says what it holds, not "transition": an operator's cue, as its own
        next request before then is ignored ("Standby in progress")."""
        wait_until(lambda: server5.run(["cl_status", "rscstatus"], check=False)
                   .stdout.strip() in holds, 30,
                   lambda: f"heartbeat settled holding {holds}\n{ha_log()}\n" + hb.logs())

    def to(node: str) -> None:
        wait_until(lambda: hb.holders() == {node}, 40,
                   lambda: f"the VIP on {node} (now {hb.holders()})\n{ha_log()}\n" + hb.logs())
        hb.wait_client(node)

    settled({"local", "all"})  # its home group, and the rest while alone
    began = time.monotonic()
    server5.run(["/usr/share/heartbeat/hb_standby", "all"], env=env)
    to("server6")
    moved = time.monotonic() - began
    settled({"none"})
    server5.run(["/usr/share/heartbeat/hb_takeover", "all"], env=env)
    to("server5")
    # at once, before heartbeat has settled: heartbeat itself may ignore this one
    # ("Standby in progress"); vigil must then ignore it too, not agree and wait
    server5.run(["/usr/share/heartbeat/hb_standby", "all"], env=env)
    settled({"local", "all", "none"})
    if hb.holders() != {"server6"}:
        server5.run(["/usr/share/heartbeat/hb_standby", "all"], env=env)
    to("server6")
    settled({"none"})
    server5.run(["/usr/share/heartbeat/hb_takeover", "all"], env=env)
    to("server5")
    # vigil killed and started again (its unit restarts it): heartbeat hears it start
    # (in flux until vigil says it is stable again), then hands the group over as before
    hb.daemons["server6"].kill()
    hb.start("server6", configure=False)
    wait_until(lambda: "peer.alive" in hb.daemons["server6"].output(), 30,
               lambda: "vigil sees heartbeat again\n" + hb.logs())
    settled({"local"})
    server5.run(["/usr/share/heartbeat/hb_standby", "all"], env=env)
    to("server6")
    print(f"hb_standby on heartbeat 3.0.6: the group on vigil {moved:.2f} s later")


def test_resource_command_refuses_a_group_the_peer_holds(hb):
    """`vigil resource start` asks the running daemon: the peer's group is not started here."""
    hb.start_both()
    group = "IPaddr::198.51.100.100/24/eth0"
    done = hb.lab.host("server6").run([VIGIL, "resource", "start", group], check=False)
    assert done.returncode != 0
    assert "holds" in done.stderr and "server5.example.com" in done.stderr
    assert hb.holders() == {"server5"}  # the VIP was not added on server6
    # the same question on the holder itself is no refusal: it is this node's group
    here = hb.lab.host("server5").run([VIGIL, "resource", "status", group], check=False)
    assert here.returncode == 0, here.stdout + here.stderr



#: after the links heal, the client is answered by the node that keeps the VIP within this
#: long (the heal noticed within a keepalive, the keeper's gratuitous ARP, or the releasing
#: vigil's hand-off announcement when the keeper is heartbeat 3.0.6, which announces nothing)
ANSWER_BOUND = 1.0
#: and the VIP is on that node alone within this long (heartbeat 3.0.6 gives its resources
#: up about 2 s after it notices the partition healed)
HEAL_BOUND = 3.0
#: vigil's own takeover burst in this test: short, so that it is over before the heal
SHORT_GARP = "duplicate_probe off\ngarp_count 2\ngarp_interval 100ms\n"


def client_arp(hb, action: str) -> None:
    """The client ignores gratuitous ARPs for the VIP (add) or hears them again (delete).

    Only announcements (sender and target address the VIP) are dropped: a holder's ARP
    request for the client's own address may come from the VIP too.
    """
    client = hb.lab.host("client")
    if action == "add":
        client.run("nft add table arp gqvip && nft add chain arp gqvip input "
                   "'{ type filter hook input priority 0; }' && nft add rule arp gqvip input "
                   f"arp saddr ip {VIP} arp daddr ip {VIP} drop")
    else:
        client.run("nft delete table arp gqvip")


def mac_of(host, ifname: str = "eth0") -> str:
    return host.run(["cat", f"/sys/class/net/{ifname}/address"]).stdout.strip()


@pytest.mark.skipif(not Path(HEARTBEAT).exists(), reason="Debian's heartbeat is not installed")
@pytest.mark.parametrize("heartbeat_on", ["server5", "server6"], ids=["heartbeat_keeps",
                                                                       "vigil_keeps"])
def test_a_healed_partition_between_debian_heartbeat_and_vigil_leaves_one_answering_holder(
        hb, heartbeat_on):
    """Both links cut, both nodes run the VIP, the client talks to server6; healed: server5
    (the home node) keeps it, server6 lets it go, and the client must be told (gratuitous
    ARP from the keeper) within HEAL_BOUND: its cache still says server6's MAC."""
    vigil_on = NODES_OF_PAIR[1 - NODES_OF_PAIR.index(heartbeat_on)]
    for name in NODES_OF_PAIR:
        hb.configure(name)
        hb.broadcast_addresses(name)
        hb.responder(name)
    hbhost, vghost = hb.lab.host(heartbeat_on), hb.lab.host(vigil_on)
    hbhost.write_file("/etc/ha.d/ha.cf", "logfile /var/log/ha-log\n" + hb.hacf())
    vghost.write_file("/etc/ha.d/vigil.cf", SHORT_GARP)

    def ha_log() -> str:
        return hbhost.run("tail -80 /var/log/ha-log", check=False).stdout

    def diagnosis(what: str) -> str:
        neigh = hb.lab.host("client").run(["ip", "neigh", "show", VIP], check=False).stdout
        return (f"{what} (holders {sorted(hb.holders())}, client cache {neigh.strip()})\n"
                f"----- heartbeat\n{ha_log()}\n" + hb.logs())

    hb.daemons["heartbeat"] = hbhost.spawn([HEARTBEAT], name="heartbeat",
                                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    hb.start(vigil_on, configure=False)
    wait_until(lambda: hb.holders() == {"server5"} and hb.client_answer() == "server5", 40,
               lambda: diagnosis("the VIP on its home server5"))
    wait_until(lambda: hb.peer(vigil_on)["status"] == "active", 10, "vigil seeing heartbeat")

    def takeovers() -> tuple[int, int]:
        """heartbeat's finished mach_down runs, vigil's announcement bursts so far."""
        text = hbhost.run(["cat", "/var/log/ha-log"], check=False).stdout
        return (text.count("mach_down takeover complete."),
                hb.daemons[vigil_on].output().count("address.announcing"))

    def send_arp_running() -> bool:
        for pid in hbhost.pids():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "send_arp":
                    return True
        return False

    before = takeovers()
    hb.lab.partition("server5", "server6")  # both links; the client still reaches both
    wait_until(lambda: hb.holders() == {"server5", "server6"}, 15,
               lambda: diagnosis("split brain: the VIP on both"))
    # the takeover announcements of the split are over before the heal: heartbeat's
    # mach_down done (its IPaddr start has spawned send_arp) and send_arp gone (5 s), and
    # vigil's takeover burst (two frames, 100 ms) sent when vigil is the one taking over;
    # only what the heal causes can correct the client then
    taker = "vigil" if vigil_on == "server6" else "heartbeat"
    wait_until(lambda: takeovers()[0] > before[0] and not send_arp_running()
               and (taker == "heartbeat" or takeovers()[1] > before[1]), 20,
               lambda: diagnosis("the takeover announcements of the split over"))
    # meanwhile the client talked to server6 (the node that lets the VIP go on the heal)
    client_arp(hb, "add")
    hb.lab.host("client").run(f"ip neigh replace {VIP} lladdr {mac_of(hb.lab.host('server6'))} "
                              "dev eth0 nud reachable")
    assert hb.client_answer() == "server6"

    hb.lab.heal("server5", "server6")
    client_arp(hb, "delete")
    healed = time.monotonic()
    answers: list[tuple[float, str | None]] = []

    def settled() -> bool:
        answer = hb.client_answer()
        answers.append((round(time.monotonic() - healed, 3), answer))
        return hb.holders() == {"server5"} and answer == "server5"

    wait_until(settled, HEAL_BOUND + 30,
               lambda: diagnosis(f"server5 alone answering after the heal ({answers[-5:]})"))
    whole = time.monotonic() - healed
    first = next(t for t, answer in answers if answer == "server5")
    outage = max([t for t, answer in answers if answer != "server5"], default=0.0)
    print(f"\nheartbeat on {heartbeat_on}, vigil on {vigil_on}: the client answered by "
          f"server5 from {first:.3f}s after the heal (last miss at {outage:.3f}s), the VIP "
          f"on server5 alone from {whole:.3f}s; answers {answers}")
    assert first <= ANSWER_BOUND and outage <= ANSWER_BOUND, \
        diagnosis(f"the client answered by server5 only after {first:.2f}s: {answers}")
    assert whole <= HEAL_BOUND, diagnosis(f"one holder only after {whole:.2f}s: {answers}")
    # vigil lets the VIP go and tells the client where it is now, or keeps it and
    # announces it on the heal; its log line follows the first frame, which the client
    # may have answered already
    said = ("address.handed_off" if vigil_on == "server6"
            else "is back after a partition: announcing the addresses")
    wait_until(lambda: said in hb.daemons[vigil_on].output(), 5,
               lambda: f"vigil's log saying {said!r}:\n{hb.daemons[vigil_on].output()}")
    # and it stays so once the pair is whole again
    wait_until(lambda: hb.peer(vigil_on)["status"] == "active", 30,
               lambda: diagnosis("the pair whole again"))
    wait_until(lambda: hb.client_answer() == "server5", 5,
               lambda: diagnosis("server5 still answering"))
    assert hb.holders() == {"server5"}


def test_a_stalled_holder_resumes_without_judging_anyone_from_its_stale_clock(hb):
    """SIGSTOP of the holder's daemon for 2.5 x deadtime, then SIGCONT.

    The peer takes over meanwhile (a split: no fencing, duplicate probe off). On
    resuming, the holder must read what queued while it slept before judging:
    it declares neither its peer nor the ping node dead, keeps its home group,
    and the peer gives it back (auto_failback on).
    """
    hb.extra = PING
    hb.start_both()
    holder = hb.daemons["server5"]
    holder.signal(signal.SIGSTOP)
    try:
        hb.wait_holders({"server5", "server6"}, 10)  # server6 took over: a split
        time.sleep(1.5)  # a negative window: the stall goes on past 2.5 x deadtime
    finally:
        resumed_at = len(holder.output())
        holder.signal(signal.SIGCONT)
    hb.wait_holders({"server5"}, 10)
    hb.wait_client("server5", timeout=10)
    wait_until(lambda: "heartbeat.stalled" in holder.output()[resumed_at:], 5,
               lambda: "server5 logs its stall\n" + hb.logs())
    after = holder.output()[resumed_at:]
    for line in ("peer.dead", "ping.dead", "the peer keeps it"):
        assert line not in after, f"server5 after SIGCONT:\n{after}"


STUCK = """#!/bin/sh
# a heartbeat resource script whose stop always fails
case "$1" in
    start) touch /run/stuck.state; exit 0 ;;
    stop) exit 1 ;;
    status) if [ -e /run/stuck.state ]; then echo running; exit 0; fi; echo stopped; exit 3 ;;
esac
exit 0
"""


def _self_reboot_setup(hb, vigil_cf: str) -> Path:
    """Both nodes configured with a reboot_command that records why and then kills the
    daemon (the lab's stand-in for `reboot -nf`: the node falls silent at once)."""
    marker = hb.lab.directory / "rebooted"
    for name in ("server5", "server6"):
        host = hb.lab.host(name)
        hb.configure(name)
        host.write_file("/etc/ha.d/resource.d/stuck", STUCK, mode=0o755)
        host.write_file("/etc/vigil-test/reboot",
                        f'#!/bin/sh\necho "$(hostname) $VIGIL_REBOOT_REASON" >> {marker}\n'
                        "kill -9 $PPID\n", mode=0o755)
        host.write_file("/etc/ha.d/vigil.cf", "duplicate_probe off\n"
                        "reboot_command /etc/vigil-test/reboot\n" + vigil_cf)
    return marker


def _said(marker: Path) -> str:
    """The reboot command's whole line (the shell creates the file before it writes)."""
    try:
        text = marker.read_text()
    except FileNotFoundError:
        return ""
    return text if text.endswith("\n") else ""


def test_failed_stop_reboot_reboots_the_node_whose_resource_will_not_stop(hb):
    hb.haresources = f"server5.example.com IPaddr::{VIP}/24/eth0 stuck\n"
    marker = _self_reboot_setup(hb, "stop_retries 1\nagent stuck\n    failed_stop reboot\n")
    for name in ("server5", "server6"):
        hb.responder(name)
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    hb.lab.host("server5").run([VIGIL, "standby"])
    wait_until(lambda: _said(marker), 15, lambda: "server5 rebooted itself\n" + hb.logs())
    said = _said(marker)
    assert said.startswith("server5") and "stuck would not stop" in said
    assert hb.daemons["server5"].wait(10), "the reboot command ran: server5's daemon is gone"
    assert "node.reboot" in hb.daemons["server5"].output()
    # the peer sees the node die and takes the group over (stuck starts there)
    wait_until(lambda: "running (peer dead)" in hb.daemons["server6"].output(), 15,
               lambda: "server6 took over\n" + hb.logs())
    assert "server6" in hb.holders()


#: a resource script whose stop fails until the operator has fixed it (removed the block)
STUCK_UNTIL_FIXED = STUCK.replace(
    "    stop) exit 1 ;;",
    "    stop) [ -e /run/stuck.block ] && exit 1\n          rm -f /run/stuck.state; exit 0 ;;")


def test_a_group_whose_stop_failed_stays_until_the_operator_cleans_it_up(hb):
    hb.haresources = f"server5.example.com IPaddr::{VIP}/24/eth0 stuck\n"
    for name in ("server5", "server6"):
        host = hb.lab.host(name)
        hb.configure(name)
        host.write_file("/etc/ha.d/resource.d/stuck", STUCK_UNTIL_FIXED, mode=0o755)
        host.write_file("/run/stuck.block", "")
        host.write_file("/etc/ha.d/vigil.cf", "duplicate_probe off\nstop_retries 1\n")
        hb.responder(name)
    for name in ("server5", "server6"):
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    server5 = hb.lab.host("server5")
    server5.run([VIGIL, "standby"])
    wait_until(lambda: "failed to stop" in hb.daemons["server5"].output(), 15,
               lambda: "server5's stop failing\n" + hb.logs())
    time.sleep(3)  # a negative window: the peer must not take what may still run here
    assert "server6" not in hb.holders()
    assert "running (peer dead)" not in hb.daemons["server6"].output()
    wrong = server5.run([VIGIL, "cleanup", "nosuch"], check=False)
    assert wrong.returncode != 0 and "no group 'nosuch'" in wrong.stderr
    assert f"IPaddr::{VIP}/24/eth0" in wrong.stderr  # it names the groups there are
    # the operator fixes what would not stop, then asks for the stop again
    server5.run(["rm", "-f", "/run/stuck.block"])
    done = server5.run([VIGIL, "cleanup", f"IPaddr::{VIP}/24/eth0"])
    assert "stop tried again" in done.stdout
    hb.wait_holders({"server6"}, 20)
    hb.wait_client("server6", timeout=15)


def test_a_dead_failfast_program_reboots_the_node(hb):
    hb.extra = "failfast root /bin/sh -c 'sleep 1; exit 3'"
    marker = _self_reboot_setup(hb, "")
    hb.responder("server6")
    hb.start("server6", configure=False)
    wait_until(lambda: _said(marker), 15, lambda: "server6 rebooted itself\n" + hb.logs())
    said = _said(marker)
    assert said.startswith("server6") and "failfast program" in said and "code 3" in said
    assert hb.daemons["server6"].wait(10)


#: a fence agent (fence-agents' protocol: key=value on stdin) whose device is the lab's
#: power switch: it asks the test to pull a host's plug and reads back the power state
LAB_FENCE_AGENT = """#!/bin/sh
action=; plug=
while IFS='=' read -r key value; do
    case "$key" in action) action=$value ;; plug) plug=$value ;; esac
done
dir={switch}
case "$action" in
    off) echo off > "$dir/$plug.request"
         i=0; while [ "$(cat "$dir/$plug.state" 2>/dev/null)" != off ]; do
             i=$((i + 1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done; exit 0 ;;
    status) [ "$(cat "$dir/$plug.state" 2>/dev/null)" = off ] && exit 2; exit 0 ;;
    monitor) [ -d "$dir" ] && exit 0; exit 1 ;;
esac
exit 1
"""


class LabPowerSwitch:
    """The lab's power switch as a fence device: a thread pulls a host's plug when the
    fence agent asks (a file in the lab directory) and says the host is off."""

    def __init__(self, lab):
        self.lab = lab
        self.directory = lab.directory / "power-switch"
        self.directory.mkdir()
        self.pulled: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LabPowerSwitch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _serve(self) -> None:
        while not self._stop.wait(0.02):
            for request in self.directory.glob("*.request"):
                host = request.name.removesuffix(".request")
                request.unlink()
                self.lab.crash(host)
                self.pulled.append(host)
                (self.directory / f"{host}.state").write_text("off\n")


def test_a_fence_agent_powers_off_a_peer_that_only_looked_dead(hb):
    """The holder's daemon stalls past deadtime while its kernel still answers for the VIP:
    without fencing the standby's duplicate probe rightly refuses the address and nothing
    moves. With a fence agent the standby powers the holder off first, then takes over."""
    switch = LabPowerSwitch(hb.lab)
    agent = LAB_FENCE_AGENT.format(switch=switch.directory)
    for name, peer in (("server5", "server6"), ("server6", "server5")):
        host = hb.lab.host(name)
        hb.configure(name)
        host.write_file("/usr/local/sbin/fence_lab", agent, mode=0o755)
        host.write_file("/etc/ha.d/vigil.cf", f"fence {peer}.example.com\n"
                        "    agent /usr/local/sbin/fence_lab\n"
                        f"    plug {peer}\n")  # the duplicate probe stays on (the default)
    with switch:
        for name in ("server5", "server6"):
            hb.responder(name)
        for name in ("server5", "server6"):
            hb.start(name, configure=False)
        hb.wait_holders({"server5"}, 20)
        hb.daemons["server5"].signal(signal.SIGSTOP)
        hb.wait_client("server6", timeout=30)
    assert switch.pulled == ["server5"]
    assert not hb.lab.host("server5").is_up()
    said = hb.daemons["server6"].output()
    assert "fence.result node=server5.example.com agent=/usr/local/sbin/fence_lab " \
           "fenced=True" in said, said
    assert said.index("fenced=True") < said.index("address.added")
    assert hb.holders() == {"server6"}


SLOW_START = """#!/bin/sh
# a heartbeat resource script whose start hangs where /run/slow.start exists
case "$1" in
    start) if [ -e /run/slow.start ]; then echo $$ > /run/slow.pid; sleep 300; fi
           touch /run/slow.state; exit 0 ;;
    stop) rm -f /run/slow.state; exit 0 ;;
    status) if [ -e /run/slow.state ]; then echo running; exit 0; fi; echo stopped; exit 3 ;;
esac
exit 0
"""


def test_a_start_still_running_when_the_keeper_returns_is_abandoned(hb):
    """A partition: server6 takes over, its start hangs after the VIP is up (as a volume
    refusing a second primary is retried); on the heal the home node keeps the group and
    server6 abandons the start at once instead of holding the VIP until it ends."""
    hb.haresources = f"server5.example.com IPaddr::{VIP}/24/eth0 slow\n"
    for name in ("server5", "server6"):
        host = hb.lab.host(name)
        hb.configure(name)
        host.write_file("/etc/ha.d/resource.d/slow", SLOW_START, mode=0o755)
        hb.responder(name)
    server6 = hb.lab.host("server6")
    server6.write_file("/run/slow.start", "")
    for name in ("server5", "server6"):
        hb.start(name, configure=False)
    hb.wait_holders({"server5"}, 20)
    hb.lab.partition("server5", "server6")
    hb.wait_holders({"server5", "server6"}, 15)
    wait_until(lambda: server6.run(["cat", "/run/slow.pid"], check=False).stdout.strip(), 10,
               lambda: "server6's start hanging\n" + hb.logs())
    hb.lab.heal("server5", "server6")
    healed = time.monotonic()
    hb.wait_holders({"server5"}, 10)
    settled = time.monotonic() - healed
    assert settled < 5, f"the VIP was on both nodes {settled:.1f} s after the heal"
    # the hanging program was ended, not left behind
    wait_until(lambda: server6.run(["sh", "-c", "kill -0 $(cat /run/slow.pid)"],
                                   check=False).returncode != 0, 10,
               lambda: "server6's hanging start ended\n" + hb.logs())
    wait_until(lambda: "stopped after its start was abandoned" in hb.daemons["server6"].output(),
               10, lambda: "server6 stopped what its start began\n" + hb.logs())
    assert "abandoning its start here" in hb.daemons["server6"].output()
    hb.wait_client("server5", timeout=10)
    assert hb.holders() == {"server5"}
