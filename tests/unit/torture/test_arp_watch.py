"""The client's ARP view of the VIP: which hosts' replies say they hold it."""

from __future__ import annotations

from vigil.net import packets
from vigil.torture.arp_watch import answerers, stale_spans
from vigil.torture.checks import Sample

VIP = "198.51.100.100"
NAMES = {"02:76:6c:00:00:05": "server5", "02:76:6c:00:00:06": "server6"}


def reply(mac: str, ip: str = VIP) -> bytes:
    return packets.arp_frame(packets.ARP_REPLY, mac, ip, "02:76:6c:00:00:0a", "198.51.100.10",
                             dst="02:76:6c:00:00:0a")


def test_replies_for_the_vip_name_the_hosts_that_sent_them():
    frames = [reply("02:76:6c:00:00:05"), reply("02:76:6c:00:00:06"),
              *packets.gratuitous_arp_pair("02:76:6c:00:00:05", VIP)]
    assert answerers(frames, VIP, NAMES) == {"server5", "server6"}


def test_requests_other_addresses_and_junk_name_nobody():
    frames = [packets.arp_frame(packets.ARP_REQUEST, "02:76:6c:00:00:05", "198.51.100.10",
                                packets.ZERO_MAC, VIP),
              reply("02:76:6c:00:00:06", "198.51.100.6"), b"", b"\x00" * 60]
    assert answerers(frames, VIP, NAMES) == frozenset()


def test_a_mac_the_lab_does_not_know_is_kept_by_its_address():
    assert answerers([reply("02:00:00:00:00:99")], VIP, NAMES) == {"mac:02:00:00:00:00:99"}


def test_a_cache_naming_a_host_that_no_longer_answers_is_stale_until_it_follows():
    looks = [(0.0, "server5", {"server5"}), (0.1, "server5", set()), (0.2, "server5", {"server6"}),
             (0.3, "server5", {"server6"}), (0.4, "server6", {"server6"}),
             (0.5, None, {"server6"}), (0.6, "server5", {"server6"})]
    cache = [(at, named) for at, named, _ in looks]
    samples = [Sample(at, frozenset(holders)) for at, _, holders in looks]
    assert stale_spans(cache, samples) == [(0.2, 0.4), (0.6, 0.6)]
