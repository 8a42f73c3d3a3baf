"""Active-active directors behind an ECMP router: three directors in DR mode (nftables)
announce the VIP with ExaBGP (`vigil director -d --announce exabgp`) to a BIRD 2 router
that installs one nexthop per announcing director; the client beyond the router is
served through the VIP, every director sends a flow to the same real server, and a
drained or stopped director's nexthop goes while established connections and new ones
go on, and a silent one's goes when the hold time runs out.
BGP timers are short (hold 3 s, keepalive 1 s: `vigil.lab.router`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "dataplane"))
from dataplane_lab_support import HttpConnection, fetch, predicted, table, vigil
from director_lab_support import ECMP_DIRECTORS as DIRECTORS
from director_lab_support import ECMP_ROUTER as ROUTER
from director_lab_support import control, nginx, timed_wait
from director_lab_support import ecmp_nexthops as announced

from vigil.lab.router import HOLD, prepare, start_speaker
from vigil.lab.seed import lab_file
from vigil.lab.topology import ecmp_topology
from vigil.testing import vigil_command, wait_until

pytestmark = pytest.mark.lab

VIP = "198.51.100.100"
CLIENT = "203.0.113.10"
PORTS = range(41000, 41024)


def announce_state(director) -> list[dict]:
    return control(director, {"command": "status"})["announce"]["vips"]


def packets_in(director) -> int:
    """Packets for VIP:80 the director's data path has forwarded so far."""
    stats = control(director, {"command": "status"})["stats"]
    return sum(service["counters"]["in_packets"] for service in stats
               if service["key"]["address"] == VIP)


def test_three_directors_share_the_vip_through_ecmp(lab_factory):
    lab = lab_factory(ecmp_topology(3))
    bird = prepare(lab, VIP)
    for name in ("rs1", "rs2"):
        host = lab.host(name)
        nginx(host, name, listen="80", extra="keepalive_timeout 600s;")
        vigil(host, "realserver", "start", "--vip", VIP)
    for name in DIRECTORS:
        director = lab.host(name)
        director.write_file("/etc/ha.d/ldirectord.cf", lab_file("ldirectord.cf"))
        start_speaker(director, ROUTER,
                      vigil_command("director", "-d", "--announce", "exabgp",
                                    "--announce-linger", "1", "--backend", "nftables",
                                    "start"))

    # one nexthop per director once each has checked its real servers
    wait_until(lambda: announced(lab) == sorted(DIRECTORS.values()), 45,
               "three nexthops for the VIP on the router", interval=0.2)
    assert bird.alive()
    for name in DIRECTORS:
        assert announce_state(lab.host(name)) == [
            {"vip": VIP, "prefix": f"{VIP}/32", "announced": True, "cause": "serving"}]

    # every director holds the same table and sends a flow to the same real server,
    # and that is the server that answers the client through the router
    tables = {name: table(lab.host(name)) for name in DIRECTORS}
    assert tables["dir1"] == tables["dir2"] == tables["dir3"]
    before = {name: packets_in(lab.host(name)) for name in DIRECTORS}
    answers = [fetch(lab, VIP, source_port=port) for port in PORTS]
    assert set(answers) == {"rs1", "rs2"}
    # the router spread the flows over every director
    assert all(packets_in(lab.host(name)) > before[name] for name in DIRECTORS), before
    for name in DIRECTORS:
        assert [predicted(lab.host(name), CLIENT, port) for port in PORTS] == answers, name

    # drain takes dir1 out of the router's route and brings it back; status says so
    vigil(lab.host("dir1"), "director", "drain")
    wait_until(lambda: announced(lab) == [DIRECTORS["dir2"], DIRECTORS["dir3"]], 15,
               "dir1's nexthop withdrawn by drain", interval=0.1)
    status = vigil(lab.host("dir1"), "director", "status", check=False).stdout
    assert f"{VIP}/32: withdrawn (draining)" in status, status
    assert [fetch(lab, VIP, source_port=port) for port in PORTS] == answers
    vigil(lab.host("dir1"), "director", "undrain")
    wait_until(lambda: announced(lab) == sorted(DIRECTORS.values()), 15,
               "dir1's nexthop back after undrain", interval=0.1)
    status = vigil(lab.host("dir1"), "director", "status", check=False).stdout
    assert f"{VIP}/32: announced (serving)" in status, status

    # long-lived connections, then dir2 stops: its nexthop goes, flows the router moves
    # meet the same real server on another director, and new connections are served
    client = lab.host("client")
    carried = packets_in(lab.host("dir2"))
    connections = [HttpConnection(client, VIP, source_port=port + 100) for port in PORTS]
    first = [c.get() for c in connections]
    assert packets_in(lab.host("dir2")) > carried  # some of them went through dir2
    # the stop withdraws, forwards for another second (--announce-linger), then clears
    # the table
    vigil(lab.host("dir2"), "director", "stop")
    wait_until(lambda: announced(lab) == [DIRECTORS["dir1"], DIRECTORS["dir3"]], 15,
               "dir2's nexthop withdrawn", interval=0.1)
    log = lab.host("dir2").read_file("/var/log/ldirectord.log")
    assert log.index("announce.withdrawn") < log.index("announce.linger") < log.rindex(
        "table.applied"), log[-1500:]
    assert [c.get() for c in connections] == first
    for connection in connections:
        connection.close()
    assert [fetch(lab, VIP, source_port=port) for port in PORTS] == answers

    # dir3 falls silent (its link cut): until the hold time runs out the router still
    # sends it flows, and the switch, with no port for dir3's MAC any more, floods those
    # frames to dir1 too: dir1 must leave them alone (they are not addressed to it), so
    # the flows the router hashes to dir3 go unanswered until its nexthop goes
    lab.link_down("dir3")
    unanswered = []
    while not unanswered and DIRECTORS["dir3"] in announced(lab):
        for port in PORTS:
            try:
                fetch(lab, VIP, source_port=port, timeout=0.3)
            except OSError:
                unanswered.append(port)
                break
    assert unanswered, "every flow was answered while dir3 was cut off but still a nexthop"
    took = timed_wait(lambda: announced(lab) == [DIRECTORS["dir1"]], HOLD + 5,
                      "dir3's nexthop gone after the hold time")
    print(f"silent director: nexthop gone {took:.2f} s after its link was cut (hold {HOLD} s)")
    assert [fetch(lab, VIP, source_port=port) for port in PORTS] == answers
