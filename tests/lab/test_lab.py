"""The lab itself: hosts, isolation, links, partitions, crashes, and clean teardown."""

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vigil.kernel.netlink import iproute
from vigil.lab import Lab, LabError, pair_topology
from vigil.testing import wait_until

pytestmark = pytest.mark.lab


def reaches(source, address: str) -> bool:
    return source.run(["ping", "-c", "1", "-W", "1", address], check=False).returncode == 0


def port_counters(lab: Lab, host: str, segment: str) -> int:
    with iproute(lab._switch_path) as switch:
        link = switch.get_links(ifname=lab._port_name(lab.host(host), segment))[0]
        stats = link.get("IFLA_STATS64")
        return stats["rx_packets"] + stats["tx_packets"]


def test_hosts_reach_each_other_over_the_lab_switch(seed_lab):
    client, server5 = seed_lab.host("client"), seed_lab.host("server5")
    before = port_counters(seed_lab, "server5", "lan")
    assert reaches(client, server5.address())
    assert reaches(client, server5.address(family=6))
    assert port_counters(seed_lab, "server5", "lan") > before  # it crossed the bridge port


def test_root_namespace_holds_nothing_of_the_lab(seed_lab):
    with iproute() as root:
        names = [link.get("ifname") for link in root.get_links()]
        addresses = [a.get("IFA_ADDRESS") for a in root.get_addr()]
    assert not any(name.startswith(("br-", "server5", "client")) for name in names)
    assert not any(a.startswith(("198.51.100.", "203.0.113.", "2001:db8:")) for a in addresses)


def test_each_host_has_its_own_hostname_and_interfaces(seed_lab):
    names = {h.name: h.run(["uname", "-n"]).stdout.strip() for h in seed_lab.hosts.values()}
    assert names["server5"] == "server5.example.com"
    assert names["server6"] == "server6.example.com"
    assert len(set(names.values())) == len(names)
    links = seed_lab.host("rs1").run(["ls", "/sys/class/net"]).stdout.split()
    assert sorted(links) == ["eth0", "lo"]
    assert "eth1" in seed_lab.host("server5").run(["ls", "/sys/class/net"]).stdout.split()


def test_etc_ha_d_and_run_are_private_per_host(seed_lab):
    server5, server6 = seed_lab.host("server5"), seed_lab.host("server6")
    server5.run("echo five > /etc/ha.d/ha.cf && echo pid > /run/heartbeat.pid")
    assert server5.read_file("/etc/ha.d/ha.cf") == "five\n"
    assert not server6.path("/etc/ha.d/ha.cf").exists()
    assert server6.run("cat /run/heartbeat.pid", check=False).returncode != 0
    machine_file = Path("/etc/ha.d/ha.cf")
    assert not machine_file.exists() or machine_file.read_text() != "five\n"
    # Files the machine has are visible underneath (heartbeat's resource scripts).
    if os.path.isdir("/etc/ha.d/resource.d"):
        assert server6.path("/etc/ha.d/resource.d").is_dir()


def test_link_cut_stops_traffic_and_restoring_brings_it_back(seed_lab):
    client, server6 = seed_lab.host("client"), seed_lab.host("server6")
    assert reaches(client, server6.address())
    seed_lab.link_down("server6")
    assert not reaches(client, server6.address())
    seed_lab.link_up("server6")
    wait_until(lambda: reaches(client, server6.address()), timeout=10, message="server6 back")


def test_cutting_one_of_two_links_leaves_the_other(seed_lab):
    server5, server6 = seed_lab.host("server5"), seed_lab.host("server6")
    seed_lab.link_down("server5", "lan")
    assert not reaches(server5, server6.address("lan"))
    assert reaches(server5, server6.address("hb"))


def test_partition_blocks_exactly_the_named_pair(seed_lab):
    server5, server6, client = (seed_lab.host(n) for n in ("server5", "server6", "client"))
    seed_lab.partition("server5", "server6")
    assert not reaches(server5, server6.address("lan"))
    assert not reaches(server5, server6.address("hb"))
    assert not reaches(server6, server5.address("lan"))
    assert reaches(server5, client.address())
    assert reaches(client, server6.address())
    seed_lab.heal("server5", "server6")
    # Pending ARP resolutions retry once a second: wait for them, with a deadline.
    wait_until(lambda: reaches(server5, server6.address("lan")), timeout=10, message="lan healed")
    wait_until(lambda: reaches(server6, server5.address("hb")), timeout=10, message="hb healed")


def round_trip(source, address: str) -> float:
    """The shortest of three pings' round trips in seconds (ping's own figure; the first
    may wait for an ARP answer too)."""
    out = source.run(["ping", "-c", "3", "-i", "0.2", "-W", "5", address]).stdout
    found = re.search(r"min/avg/max/mdev = ([0-9.]+)/", out)
    assert found, out
    return float(found.group(1)) / 1000


def arp_round_trip(source, address: str) -> float:
    """One ARP request's answer time in seconds (arping's own figure)."""
    out = source.run(["arping", "-c", "1", "-w", "5", "-I", "eth0", address]).stdout
    found = re.search(r"reply from .* ([0-9.]+)ms", out)
    assert found, out
    return float(found.group(1)) / 1000


def switch_links(lab: Lab) -> dict[str, int | None]:
    """Every link of the switch and the index of the bridge it is on."""
    with iproute(lab._switch_path) as switch:
        return {link.get("IFLA_IFNAME"): link.get("IFLA_MASTER") for link in switch.get_links()}


def test_a_delayed_host_gets_every_frame_late_both_ways_until_undelayed(seed_lab):
    client, server5 = seed_lab.host("client"), seed_lab.host("server5")
    server6 = seed_lab.host("server6")
    before = switch_links(seed_lab)
    assert round_trip(client, server5.address()) < 0.05
    seed_lab.delayed("server5", 0.2)
    # 0.2 s there and 0.2 s back, for IP and for ARP alike, on each of its ports
    assert 0.4 <= round_trip(client, server5.address()) < 0.7
    assert 0.4 <= arp_round_trip(client, server5.address()) < 0.7
    assert 0.4 <= round_trip(server6, server5.address("hb")) < 0.7
    assert round_trip(client, server6.address()) < 0.05  # the other hosts are not delayed
    relays = [p for p in seed_lab.processes if p.name.startswith("delay")]
    assert len(relays) == 2  # lan and hb
    seed_lab.undelayed()
    assert not any(p.alive() for p in relays)
    assert switch_links(seed_lab) == before  # the ports back on their bridges, no pair left
    assert round_trip(client, server5.address()) < 0.05
    assert not [p for p in seed_lab.processes if p.name.startswith("delay")]


def test_broadcast_does_not_cross_a_partition(seed_lab):
    """Heartbeat's bcast medium must be cut too: check with a UDP broadcast."""
    server5, server6, client = (seed_lab.host(n) for n in ("server5", "server6", "client"))
    seed_lab.partition("server5", "server6")
    listeners = {}
    for host in (server6, client):
        listeners[host.name] = host.spawn(
            [sys.executable, "-c", textwrap.dedent("""
                import socket
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("", 7694)); print("ready", flush=True)
                print(s.recvfrom(100)[0].decode(), flush=True)
            """)], name="listen")
    for process in listeners.values():
        wait_until(lambda p=process: "ready" in p.output(), timeout=10)
    server5.run([sys.executable, "-c", textwrap.dedent("""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        for _ in range(3):
            s.sendto(b"beat", ("198.51.100.255", 7694))
    """)])
    wait_until(lambda: "beat" in listeners["client"].output(), timeout=5,
               message="the broadcast at the client")
    time.sleep(0.2)  # a negative: give a stray frame the same time the positive needed
    assert "beat" not in listeners["server6"].output()


def test_spawned_process_runs_in_the_host_and_stops_by_pid(seed_lab):
    rs1 = seed_lab.host("rs1")
    process = rs1.spawn(["sleep", "300"], name="sleeper")
    assert process.alive()
    assert process.pid in rs1.pids()
    assert process.pid not in seed_lab.host("rs2").pids()
    process.stop(timeout=2)
    assert not process.alive()


CLOCKS = "import time; print(time.time(), time.monotonic())"


def test_a_stepped_host_clock_moves_its_wall_clock_alone(seed_lab):
    server5, server6 = seed_lab.host("server5"), seed_lab.host("server6")
    server5.allow_clock_steps()
    server5.step_clock(-3600)
    watcher = server5.spawn([sys.executable, "-c", "import time\nwhile True:\n"
                             "    print(time.time(), time.monotonic(), flush=True)\n"
                             "    time.sleep(0.2)"], name="clocks")

    def readings(host) -> tuple[float, float]:
        wall, monotonic = host.run([sys.executable, "-c", CLOCKS]).stdout.split()
        return float(wall) - time.time(), float(monotonic) - time.monotonic()

    wall, monotonic = readings(server5)
    assert -3610 < wall < -3590 and abs(monotonic) < 5  # the monotonic clock is the machine's
    wall, _ = readings(server6)
    assert abs(wall) < 5  # another host keeps the machine's clock
    # a step reaches a process already running (libfaketime reads the file every second)
    server5.step_clock(86400)

    def last_offset() -> float | None:
        lines = watcher.output().split("\n")[:-1]  # whole lines only
        return float(lines[-1].split()[0]) - time.time() if lines else None

    wait_until(lambda: (last_offset() or 0) > 86000, timeout=5, message="the step seen")
    lines = [line.split() for line in watcher.output().splitlines() if line.strip()]
    steps = [float(b[1]) - float(a[1]) for a, b in itertools.pairwise(lines)]
    assert all(0 < step < 2 for step in steps)  # no step of the monotonic clock
    server5.step_clock(0)
    wall, _ = readings(server5)
    assert abs(wall) < 5
    watcher.stop(timeout=2)


def test_crash_kills_everything_and_boot_brings_a_fresh_host(seed_lab):
    server5, client = seed_lab.host("server5"), seed_lab.host("client")
    server5.write_file("/etc/ha.d/kept-on-disk", "yes\n")
    server5.run("echo gone > /run/volatile")
    seed_lab.add_address("server5", "eth0", "198.51.100.100/24")
    process = server5.spawn(["sleep", "300"], name="victim")
    seed_lab.crash("server5")
    assert not process.alive()
    assert server5.pids() == []
    assert not server5.is_up()
    assert not reaches(client, "198.51.100.100")
    with pytest.raises(LabError):
        server5.run(["true"])
    seed_lab.boot("server5")
    assert server5.read_file("/etc/ha.d/kept-on-disk") == "yes\n"  # the disk survives
    assert server5.run("cat /run/volatile", check=False).returncode != 0  # /run does not
    assert "198.51.100.100/24" not in seed_lab.addresses("server5", "eth0")
    wait_until(lambda: reaches(client, server5.address()), timeout=10, message="server5 back")


def test_a_host_carries_an_address_only_while_it_is_up_and_has_the_interface(seed_lab):
    """Samplers read who holds a VIP while tests crash hosts: a read racing a power-off
    says "not carried", never raises (a sampler thread that died kept its last answer)."""
    import threading
    seed_lab.add_address("server5", "eth0", "198.51.100.100/24")
    assert seed_lab.carries("server5", "198.51.100.100", "eth0")
    assert seed_lab.carries("server5", "198.51.100.100")
    assert not seed_lab.carries("server5", "198.51.100.100", "eth1")
    assert not seed_lab.carries("server5", "198.51.100.10", "eth0")  # a prefix of it
    assert not seed_lab.carries("server5", "198.51.100.100", "eth9")  # no such interface
    answers: list[bool] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                answers.append(seed_lab.carries("server5", "198.51.100.100", "eth0"))
            except BaseException as exc:
                failures.append(exc)
                return
    reader = threading.Thread(target=sample)
    reader.start()
    try:
        wait_until(lambda: len(answers) > 5, 10, "samples before the crash")
        seed_lab.crash("server5")
        count = len(answers)
        wait_until(lambda: len(answers) > count + 5 or failures, 10, "samples after it")
    finally:
        done.set()
        reader.join(10)
    assert failures == []
    assert answers[0] is True and answers[-1] is False
    seed_lab.boot("server5")
    assert not seed_lab.carries("server5", "198.51.100.100", "eth0")


def test_boot_right_after_a_crash_that_left_connections_behind(seed_lab):
    """Orphaned TCP sockets keep a dead host's namespace alive; boot must not mind."""
    server5, client = seed_lab.host("server5"), seed_lab.host("client")
    listener = client.spawn([sys.executable, "-c", textwrap.dedent("""
        import socket, time
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", 7000)); s.listen(); print("ready", flush=True)
        c, _ = s.accept(); print("accepted", flush=True); time.sleep(300)
    """)], name="listener")
    wait_until(lambda: "ready" in listener.output(), 10, "the listener")
    server5.spawn([sys.executable, "-c", textwrap.dedent(f"""
        import socket, time
        s = socket.create_connection(("{client.address()}", 7000))
        s.sendall(b"x" * 100000); time.sleep(300)
    """)], name="talker")
    wait_until(lambda: "accepted" in listener.output(), 10, "the connection")
    seed_lab.crash("server5")
    seed_lab.boot("server5")
    wait_until(lambda: reaches(client, server5.address()), timeout=10, message="server5 back")


def test_two_labs_run_side_by_side(lab_factory):
    first = lab_factory(pair_topology())
    second = lab_factory(pair_topology())
    assert first.run_id != second.run_id
    first.add_address("server5", "eth0", "198.51.100.100/24")
    # The same addresses live in both labs, each on its own switch.
    assert reaches(first.host("client"), "198.51.100.100")
    assert not reaches(second.host("client"), "198.51.100.100")
    assert reaches(second.host("client"), second.host("server5").address())
    second.down()
    assert reaches(first.host("client"), first.host("server6").address())


FAILING_SCRIPT = """
import json, sys
from vigil.lab import Lab, pair_topology
lab = Lab(pair_topology()).__enter__()
with lab:
    lab.host("server5").spawn(["sleep", "300"], name="sleeper")
    lab.host("server5").write_file("/etc/ha.d/x", "x")
    print(json.dumps({"run_id": lab.run_id,
                      "pids": [p.pid for p in lab.processes],
                      "holders": [h.holder_pid for h in lab.hosts.values()]}), flush=True)
    {tail}
"""


def _run_failing(tail: str, tmp_path, send_signal: int | None = None) -> tuple[dict, int]:
    script = tmp_path / "failing.py"
    script.write_text(FAILING_SCRIPT.replace("{tail}", tail))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    info = json.loads(process.stdout.readline())
    if send_signal:
        process.send_signal(send_signal)
    process.wait(timeout=60)
    return info, process.returncode


def _assert_nothing_left(info: dict) -> None:
    lab = Lab(pair_topology(), run_id=info["run_id"])
    assert lab.leftovers() == []
    for pid in info["pids"] + info["holders"]:
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or b"sleep" not in cmdline.read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")
def test_a_failing_user_leaves_nothing_behind(tmp_path):
    info, code = _run_failing("raise RuntimeError('failing on purpose')", tmp_path)
    assert code == 1
    _assert_nothing_left(info)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")
def test_a_terminated_user_leaves_nothing_behind(tmp_path):
    info, code = _run_failing("import time; time.sleep(60)", tmp_path, signal.SIGTERM)
    assert code != 0
    _assert_nothing_left(info)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")
def test_down_all_sweeps_a_lab_whose_builder_was_killed(tmp_path):
    info, code = _run_failing("import time; time.sleep(60)", tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    lab = Lab(pair_topology(), run_id=info["run_id"])
    assert lab.leftovers() != []  # SIGKILL leaves no chance to clean up ...
    done = subprocess.run([sys.executable, "-m", "vigil", "lab", "down", "--all"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"lab {info['run_id']}: removed" in done.stdout
    _assert_nothing_left(info)  # ... but the sweep does


def test_unknown_host_is_a_clear_error(seed_lab):
    with pytest.raises(Exception) as failure:
        seed_lab.host("server7")
    assert "no host 'server7'" in str(failure.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")
def test_a_powered_off_hosts_mount_namespace_number_stays_its_own_until_it_is_waited_for(
        pair_lab):
    """The kernel gives a freed namespace's number to the next one made: while a powered-off
    host is waited for, a host booting in another lab must not be taken for one of its
    processes (it was killed at boot, seen as a host that never booted)."""
    host = pair_lab.host("client")
    plug = pair_lab._pull_plug(host)
    newcomer = None
    try:
        assert plug.mnt_inode is not None
        wait_until(lambda: not plug.older_in_mount_namespace(), 10,
                   "the powered-off host's processes to end")
        newcomer = subprocess.Popen(["unshare", "--mount", "sleep", "60"])
        wait_until(lambda: Path(f"/proc/{newcomer.pid}/cmdline").read_bytes().startswith(
            b"sleep"), 10, "the newcomer's own mount namespace")
        assert os.stat(f"/proc/{newcomer.pid}/ns/mnt").st_ino != plug.mnt_inode
    finally:
        if newcomer is not None:
            newcomer.kill()
            newcomer.wait()
        pair_lab._wait_dead(host, plug)
    assert not host.pids()
