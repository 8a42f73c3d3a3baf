"""`vigil realserver` on a lab real server: VIP on lo, ARP silent, settings given back."""

import json
from pathlib import Path

import pytest

from vigil.testing import vigil_command, wait_until

pytestmark = pytest.mark.lab

VIP = "198.51.100.100"
VIP6 = "2001:db8:0:1::100"
CONTRIB = Path(__file__).resolve().parents[3] / "contrib" / "vigil-realserver"


def sysctl(host, iface: str, key: str) -> str:
    """Read inside the host: /proc/sys/net belongs to the reader's network namespace."""
    return host.run(["cat", f"/proc/sys/net/ipv4/conf/{iface}/{key}"]).stdout.strip()


def realserver(host, *args: str, check: bool = True):
    return host.run(vigil_command("realserver", *args), check=check)


def lo_addresses(lab, host: str) -> list[str]:
    return lab.addresses(host, "lo")


def arp_answered(client, address: str) -> bool:
    done = client.run(["arping", "-c", "2", "-w", "2", "-I", "eth0", address], check=False)
    return done.returncode == 0


def test_start_puts_vip_on_lo_and_silences_arp(seed_lab):
    rs1, client = seed_lab.host("rs1"), seed_lab.host("client")
    realserver(rs1, "start", "--vip", VIP)
    assert f"{VIP}/32" in lo_addresses(seed_lab, "rs1")
    label = rs1.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"]).stdout
    assert "lo:0" in label
    for iface in ("all", "eth0"):
        assert sysctl(rs1, iface, "arp_ignore") == "1"
        assert sysctl(rs1, iface, "arp_announce") == "2"
    assert not arp_answered(client, VIP)
    # Positive control: the same probe gets an answer once a host holds it on eth0.
    seed_lab.add_address("server5", "eth0", f"{VIP}/24")
    assert arp_answered(client, VIP)


def test_without_the_arp_settings_a_vip_on_lo_would_answer(seed_lab):
    """Control: what the seed's sysctls prevent (Linux answers for any local address)."""
    seed_lab.add_address("rs1", "lo", f"{VIP}/32")
    assert arp_answered(seed_lab.host("client"), VIP)


def test_real_server_accepts_traffic_for_the_vip_sent_to_its_mac(seed_lab):
    rs1, client = seed_lab.host("rs1"), seed_lab.host("client")
    realserver(rs1, "start", "--vip", VIP)
    rs1_mac = rs1.spec.port("lan").mac
    # What a DR director does: the frame carries the VIP, addressed to the real server's MAC.
    client.run(["ip", "neigh", "replace", VIP, "lladdr", rs1_mac, "dev", "eth0",
                "nud", "permanent"])
    assert client.run(["ping", "-c", "1", "-W", "2", VIP], check=False).returncode == 0


def test_status_follows_lsb_codes(seed_lab):
    rs2 = seed_lab.host("rs2")
    assert realserver(rs2, "status", "--vip", VIP, check=False).returncode == 3
    realserver(rs2, "start", "--vip", VIP)
    done = realserver(rs2, "status", "--vip", VIP, "--json")
    status = json.loads(done.stdout)[0]
    assert status["running"] and status["vip_on_loopback"]
    realserver(rs2, "stop", "--vip", VIP)
    assert realserver(rs2, "status", "--vip", VIP, check=False).returncode == 3


def test_stop_gives_back_the_values_found_before(seed_lab):
    rs1 = seed_lab.host("rs1")
    rs1.sysctl("net.ipv4.conf.eth0.arp_announce", 1)
    rs1.sysctl("net.ipv4.conf.eth0.arp_ignore", 2)  # stricter than needed: left alone
    realserver(rs1, "start", "--vip", VIP)
    assert sysctl(rs1, "eth0", "arp_ignore") == "2"
    assert sysctl(rs1, "eth0", "arp_announce") == "2"
    assert sysctl(rs1, "all", "arp_ignore") == "1"
    realserver(rs1, "stop", "--vip", VIP)
    assert f"{VIP}/32" not in lo_addresses(seed_lab, "rs1")
    assert sysctl(rs1, "eth0", "arp_announce") == "1"  # not forced to 0
    assert sysctl(rs1, "eth0", "arp_ignore") == "2"
    assert sysctl(rs1, "all", "arp_ignore") == "0"


def test_start_is_idempotent(seed_lab):
    rs1 = seed_lab.host("rs1")
    first = realserver(rs1, "start", "--vip", VIP).stdout
    second = realserver(rs1, "start", "--vip", VIP).stdout
    assert "arp_ignore" in first and "nothing to change" in second
    assert lo_addresses(seed_lab, "rs1").count(f"{VIP}/32") == 1
    realserver(rs1, "stop", "--vip", VIP)
    assert sysctl(rs1, "all", "arp_ignore") == "0"


def test_settings_stay_until_the_last_vip_stops(seed_lab):
    rs1 = seed_lab.host("rs1")
    other = "198.51.100.101"
    realserver(rs1, "start", "--vip", VIP)
    realserver(rs1, "start", "--vip", other)
    realserver(rs1, "stop", "--vip", VIP)
    assert sysctl(rs1, "all", "arp_ignore") == "1"
    assert f"{other}/32" in lo_addresses(seed_lab, "rs1")
    realserver(rs1, "stop", "--vip", other)
    assert sysctl(rs1, "all", "arp_ignore") == "0"


def test_vip_on_a_real_interface_is_refused(seed_lab):
    rs1 = seed_lab.host("rs1")
    seed_lab.add_address("rs1", "eth0", f"{VIP}/24")
    done = realserver(rs1, "start", "--vip", VIP, check=False)
    assert done.returncode == 1
    assert "is on eth0" in done.stderr and "Traceback" not in done.stderr
    assert sysctl(rs1, "all", "arp_ignore") == "0"  # nothing was changed
    assert f"{VIP}/32" not in lo_addresses(seed_lab, "rs1")


def test_bad_vip_is_one_clear_line(seed_lab):
    done = realserver(seed_lab.host("rs1"), "start", "--vip", "300.1.2.3", check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "vigil: --vip '300.1.2.3' is not an IP address"


def test_ipv6_vip_stays_silent_on_the_segment(seed_lab):
    rs1, client = seed_lab.host("rs1"), seed_lab.host("client")
    realserver(rs1, "start", "--vip", VIP6)
    assert f"{VIP6}/128" in lo_addresses(seed_lab, "rs1")
    assert client.run(["ping", "-6", "-c", "1", "-W", "1", VIP6], check=False).returncode != 0
    client.run(["ip", "-6", "neigh", "replace", VIP6, "lladdr", rs1.spec.port("lan").mac,
                "dev", "eth0", "nud", "permanent"])
    wait_until(
        lambda: client.run(["ping", "-6", "-c", "1", "-W", "1", VIP6], check=False).returncode == 0,
        timeout=10, message="the IPv6 VIP answering through rs1's MAC")


def test_lsb_script(seed_lab):
    rs2 = seed_lab.host("rs2")
    rs2.write_file("/etc/default/vigil-realserver", f'VIPS="{VIP}"\n')
    env = {"PATH": f"{Path(vigil_command()[0]).parent}:/usr/sbin:/usr/bin:/sbin:/bin"}
    assert rs2.run([str(CONTRIB), "status"], check=False, env=env).returncode == 3
    rs2.run([str(CONTRIB), "start"], env=env)
    assert rs2.run([str(CONTRIB), "status"], check=False, env=env).returncode == 0
    assert f"{VIP}/32" in lo_addresses(seed_lab, "rs2")
    rs2.run([str(CONTRIB), "stop"], env=env)
    assert f"{VIP}/32" not in lo_addresses(seed_lab, "rs2")
