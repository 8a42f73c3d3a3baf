"""The seed's LVS-DR set-up at kernel speed: `vigil director` on server5 with the seed's
ldirectord.cf (nftables backend), rs1 and rs2 as `vigil realserver` real servers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataplane_lab_support import (
    CLIENT,
    CONFIG_WITH_IPV6,
    RS1,
    RS2,
    VIP,
    VIP6,
    HttpConnection,
    answers_and_predictions,
    control,
    fetch,
    install_probe,
    mac_of,
    nft,
    nft_json,
    predicted,
    probe_counts,
    real_servers,
    ruleset_without_counts,
    settled,
    start_director,
    vigil,
    wait_weights,
)

from vigil.lab.seed import lab_file
from vigil.testing import wait_until

pytestmark = pytest.mark.lab


@pytest.fixture
def dr_lab(seed_lab):
    servers = real_servers(seed_lab)
    server5 = start_director(seed_lab)
    wait_weights(server5, {RS1: 1, RS2: 1})
    wait_until(lambda: settled(server5), 15, "the director settled")
    yield seed_lab, server5, servers
    vigil(server5, "director", "stop", check=False)


def connection_to(lab, server5, name: str, first_port: int = 41000) -> HttpConnection:
    """A long-lived connection that the slots send to `name` (found by prediction)."""
    port = next(p for p in range(first_port, first_port + 200)
                if predicted(server5, CLIENT, p) == name)
    connection = HttpConnection(lab.host("client"), VIP, source_port=port)
    assert connection.get() == name
    return connection


def test_requests_follow_the_slots_and_replies_bypass_the_director(dr_lab):
    lab, server5, _ = dr_lab
    client = lab.host("client")
    install_probe(server5, "replies", [f"ip saddr {VIP} tcp sport 80"])
    macs = {name: mac_of(lab.host(name)) for name in ("rs1", "rs2")}
    install_probe(client, "replies", [f"ip saddr {VIP} ether saddr {macs['rs1']}",
                                      f"ip saddr {VIP} ether saddr {macs['rs2']}",
                                      f"ip saddr {VIP} ether saddr {mac_of(server5)}"])
    answers, predictions = answers_and_predictions(lab, server5, range(42000, 42030))
    # Each connection reaches the server the scheduler's slot table names for it ...
    assert answers == predictions
    assert set(answers) == {"rs1", "rs2"}
    # ... and its replies come from that real server, never through the director.
    from_rs1, from_rs2, from_director = probe_counts(client, "replies")
    assert from_rs1 > 0 and from_rs2 > 0 and from_director == 0
    assert probe_counts(server5, "replies") == [0]
    lines = vigil(server5, "lvs", "list", "-n", "--stats").stdout.splitlines()
    assert int(lines[3].split()[2]) in (30, 60, 90)  # one connection per request


def test_stopping_nginx_on_rs1_moves_new_connections_and_spares_rs2(dr_lab):
    lab, server5, servers = dr_lab
    to_rs2 = connection_to(lab, server5, "rs2")
    servers["rs1"].stop()
    wait_weights(server5, {RS1: 0, RS2: 1})  # quiescent=yes
    assert {fetch(lab) for _ in range(12)} == {"rs2"}
    assert [to_rs2.get() for _ in range(3)] == ["rs2"] * 3
    to_rs2.close()


def test_quiesced_and_removed_servers_keep_their_connections(dr_lab):
    lab, server5, _ = dr_lab
    to_rs2 = connection_to(lab, server5, "rs2")
    config = lab_file("ldirectord.cf")
    # Weight 0 by hand (the file, autoreload): rs2 is quiesced, not down.
    server5.write_file("/etc/ha.d/ldirectord.cf",
                       config.replace(f"real={RS2}:80 gate", f"real={RS2}:80 gate 0"))
    wait_weights(server5, {RS1: 1, RS2: 0})
    assert {fetch(lab) for _ in range(12)} == {"rs1"}
    assert to_rs2.get() == "rs2"
    # The slots rs2 gave up are in transition: its unrecorded connections stay with it.
    chains = {o["chain"]["name"] for o in nft_json(server5, "list", "table", "netdev", "vigil")
              if "chain" in o}
    assert "t_tcp_198_51_100_100_80__198_51_100_2_80__198_51_100_1_80" in chains
    # Removed from the file altogether: still the same.
    server5.write_file("/etc/ha.d/ldirectord.cf",
                       config.replace(f"\treal={RS2}:80 gate\n", ""))
    wait_weights(server5, {RS1: 1})
    assert to_rs2.get() == "rs2"
    assert {fetch(lab) for _ in range(8)} == {"rs1"}
    listing = vigil(server5, "lvs", "list", "-n").stdout
    assert RS2 not in listing  # retired in the kernel, gone from the table
    to_rs2.close()


def test_reload_with_identical_config_changes_nothing_in_the_kernel(dr_lab):
    lab, server5, _ = dr_lab
    assert fetch(lab) in ("rs1", "rs2")  # (no traffic below: the counters stay put)
    before = nft(server5, "-a", "-j", "list", "ruleset").stdout
    monitor = server5.spawn(["stdbuf", "-oL", "nft", "monitor"], name="nft-monitor")
    log = "/var/log/ldirectord.log"
    reloads = server5.read_file(log).count("config.unchanged")
    vigil(server5, "director", "reload")  # SIGHUP: read the file again
    server5.run(["touch", "/etc/ha.d/ldirectord.cf"])  # autoreload: new mtime, same text
    wait_until(lambda: server5.read_file(log).count("config.unchanged") > reloads, 10,
               "reload done (the same file: nothing to apply)")
    # Let every loop of the director run a few times: checks, table sync, autoreload
    # poll and the backend's maintenance all tick at least once a second.
    checks = control(server5, {"command": "status"})["checks_run"]
    wait_until(lambda: control(server5, {"command": "status"})["checks_run"] >= checks + 6,
               15, "three more check rounds")
    after = nft(server5, "-a", "-j", "list", "ruleset").stdout
    monitor.stop()
    assert after == before  # every object, element, counter and rule handle
    assert monitor.output().strip() == ""  # no transaction reached the kernel at all


def test_a_real_server_mac_change_is_followed(dr_lab):
    lab, server5, _ = dr_lab
    rs1 = lab.host("rs1")
    to_rs1 = iter([p for p in range(43000, 43600) if predicted(server5, CLIENT, p) == "rs1"])
    assert fetch(lab, source_port=next(to_rs1)) == "rs1"
    rs1.run(["ip", "link", "set", "eth0", "address", "02:76:6c:00:00:99"])

    def answered() -> bool:
        try:  # a new connection each time: a timed-out attempt leaves nothing behind
            return fetch(lab, source_port=next(to_rs1), timeout=1.0) == "rs1"
        except OSError:
            return False

    # Its checks fail (frames go to the old MAC), it goes down, the director drops its
    # neighbour entry, the next check resolves the new MAC, it comes back: the data path
    # asks the neighbour layer on every packet, so it follows at once.
    wait_until(answered, 30, lambda: "rs1 reached at its new MAC; director log:\n"
               + server5.read_file("/var/log/ldirectord.log")[-1500:]
               + server5.run(["ip", "neigh"]).stdout)
    assert "02:76:6c:00:00:99" in server5.run(["ip", "neigh", "show", RS1]).stdout
    assert one_to_each(lab, server5) == {"rs1": "rs1", "rs2": "rs2"}


def test_a_killed_director_leaves_the_data_path_and_a_new_one_adopts_it(dr_lab):
    lab, server5, _ = dr_lab
    to_rs1 = connection_to(lab, server5, "rs1")
    before = ruleset_without_counts(server5)
    fresh = {name: next(p for p in range(45000, 45300) if predicted(server5, CLIENT, p) == name)
             for name in ("rs1", "rs2")}  # asked while the director still answers
    pid = int(server5.read_file("/run/vigil/director.ldirectord.cf.pid").split()[0])
    server5.run(["kill", "-9", str(pid)])
    # The kernel keeps forwarding without its control plane.
    assert to_rs1.get() == "rs1"
    assert {name: fetch(lab, source_port=port) for name, port in fresh.items()} == \
        {"rs1": "rs1", "rs2": "rs2"}
    server5.run(["rm", "-f", "/run/vigil/director.ldirectord.cf.pid",
                 "/run/vigil/director.ldirectord.cf.sock"])
    vigil(server5, "director", "start")
    wait_until(lambda: "nftables.adopted" in server5.read_file("/var/log/ldirectord.log"),
               10, "the new director adopted the kernel's table")
    wait_weights(server5, {RS1: 1, RS2: 1})
    assert to_rs1.get() == "rs1"
    assert ruleset_without_counts(server5) == before  # adopted: not one handle changed
    to_rs1.close()


def one_to_each(lab, director) -> dict[str, str]:
    """A new IPv4 connection from a source port the director's table sends to each real
    server, and who answered (ephemeral ports could all land on one)."""
    ports = {name: next(p for p in range(45000, 45300) if predicted(director, CLIENT, p) == name)
             for name in ("rs1", "rs2")}
    return {name: fetch(lab, source_port=port) for name, port in ports.items()}


def test_ipv6_direct_routing(seed_lab):
    real_servers(seed_lab, vips=(VIP, VIP6))
    server5 = start_director(seed_lab, config=CONFIG_WITH_IPV6, vips=(VIP, VIP6))
    try:
        wait_weights(server5, {"2001:db8:0:1::1": 1, "2001:db8:0:1::2": 1}, vip=VIP6)
        wait_until(lambda: settled(server5), 15, "the director settled")
        answers, predictions = answers_and_predictions(
            seed_lab, server5, range(44000, 44016), VIP6, "2001:db8:0:1::a")
        assert answers == predictions
        assert set(answers) == {"rs1", "rs2"}
        assert one_to_each(seed_lab, server5) == {"rs1": "rs1", "rs2": "rs2"}  # IPv4 too
    finally:
        vigil(server5, "director", "stop", check=False)


def test_checks_leave_from_the_directors_own_address_when_the_kernel_prefers_a_vip(seed_lab):
    """A route whose preferred source is the VIP (what IPv6's tie-break can also pick):
    a DR real server holds the VIP on lo and would answer a check from it to itself."""
    real_servers(seed_lab, vips=(VIP, VIP6))
    server5 = seed_lab.host("server5")
    server5.run(["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"])
    server5.run(["ip", "-6", "addr", "add", f"{VIP6}/64", "dev", "eth0", "nodad"])
    reals6 = ("2001:db8:0:1::1", "2001:db8:0:1::2")
    for real in (RS1, RS2):
        server5.run(["ip", "route", "add", f"{real}/32", "dev", "eth0", "src", VIP])
    for real in reals6:
        server5.run(["ip", "-6", "route", "add", f"{real}/128", "dev", "eth0", "src", VIP6])
    # the kernel's own choice is the VIP, for both families
    assert f"src {VIP} " in server5.run(["ip", "route", "get", RS1]).stdout
    assert f"src {VIP6} " in server5.run(["ip", "-6", "route", "get", reals6[0]]).stdout
    config = lab_file("ldirectord.cf") + f"""virtual6=[{VIP6}]:80
\treal6=[{reals6[0]}]:80 gate
\treal6=[{reals6[1]}]:80 gate
\tservice=http
\tscheduler=rr
\tprotocol=tcp
\tchecktype=negotiate
"""
    server5 = start_director(seed_lab, config=config, vips=())
    try:
        wait_weights(server5, {RS1: 1, RS2: 1})
        wait_weights(server5, {reals6[0]: 1, reals6[1]: 1}, vip=VIP6)
        wait_until(lambda: settled(server5), 15, "the director settled")
        assert one_to_each(seed_lab, server5) == {"rs1": "rs1", "rs2": "rs2"}
    finally:
        vigil(server5, "director", "stop", check=False)


def test_zeroed_counters_count_again_from_zero_and_active_connections_stay(dr_lab):
    """vigil lvs -Z on the nftables backend: --stats starts again from 0; the ActiveConn
    estimate (SYNs minus FINs, from the same kernel counters) is not a counter and stays;
    direct routing keeps no connection state, so -L -c says it has none to list."""
    lab, server5, _ = dr_lab

    def stats() -> list[list[str]]:
        lines = vigil(server5, "lvs", "-L", "-n", "--stats", "--exact").stdout.splitlines()
        return [line.split() for line in lines[3:]]

    def active() -> int:
        lines = vigil(server5, "lvs", "-L", "-n").stdout.splitlines()
        return sum(int(line.split()[4]) for line in lines[3:] if line.startswith("  ->"))

    held = connection_to(lab, server5, "rs1")
    try:
        for _ in range(4):
            fetch(lab)
        assert int(stats()[0][2]) >= 5 and int(stats()[0][3]) > 0
        before = active()
        assert before >= 1
        vigil(server5, "lvs", "-Z")
        assert all(row[-5:] == ["0"] * 5 for row in stats())
        assert active() == before
        fetch(lab)
        assert int(stats()[0][2]) == 1
        done = vigil(server5, "lvs", "-L", "-c", "-n", check=False)
        assert done.returncode == 1 and "no connection state to list" in done.stderr
        assert f"tcp:{VIP}:80" in done.stderr and done.stdout == ""
    finally:
        held.close()
