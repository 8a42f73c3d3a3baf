"""Frames for announcements and probes: exact bytes, parsing, and heartbeat's burst timing."""

import ipaddress
import itertools

from vigil.net import packets

MAC = "02:76:6c:00:00:01"


def test_gratuitous_arp_pair_is_reply_then_request_both_broadcast():
    reply, request = packets.gratuitous_arp_pair(MAC, "198.51.100.100")
    assert reply.hex() == (
        "ffffffffffff" "02766c000001" "0806"  # broadcast, from us, ARP
        "0001" "0800" "06" "04" "0002"  # Ethernet/IPv4, reply
        "02766c000001" "c6336464"  # sender: our MAC, the VIP
        "02766c000001" "c6336464"  # target: the same (gratuitous)
    )
    parsed = packets.parse_arp(request)
    assert parsed is not None
    assert (parsed.op, parsed.sender_ip, parsed.target_ip) == (1, "198.51.100.100",
                                                              "198.51.100.100")
    assert parsed.target_mac == "00:00:00:00:00:00" and parsed.eth_dst == "ff:ff:ff:ff:ff:ff"


def test_arp_probe_comes_from_zero_address_and_conflicts_are_recognised():
    probe = packets.parse_arp(packets.arp_probe(MAC, "198.51.100.100"))
    assert probe.sender_ip == "0.0.0.0" and probe.target_ip == "198.51.100.100"
    other = "02:76:6c:00:00:02"
    answer = packets.parse_arp(packets.arp_frame(2, other, "198.51.100.100", MAC, "0.0.0.0"))
    assert packets.arp_conflict(answer, "198.51.100.100", MAC)
    assert not packets.arp_conflict(answer, "198.51.100.101", MAC)
    # Our own frames, looped back, are never a conflict.
    own = packets.parse_arp(packets.gratuitous_arp_pair(MAC, "198.51.100.100")[0])
    assert not packets.arp_conflict(own, "198.51.100.100", MAC)
    # Someone else probing for the same address at the same moment is not a holder (the
    # peer starting the same group): the split-brain rule settles it, not a refusal.
    rival = packets.parse_arp(packets.arp_probe(other, "198.51.100.100"))
    assert not packets.arp_conflict(rival, "198.51.100.100", MAC)


def test_parse_arp_ignores_other_frames():
    assert packets.parse_arp(b"\0" * 60) is None
    assert packets.parse_arp(packets.unsolicited_na(MAC, "2001:db8:0:1::100")) is None


def test_unsolicited_na_is_a_valid_override_advertisement_to_all_nodes():
    frame = packets.unsolicited_na(MAC, "2001:db8:0:1::100")
    assert frame[:6].hex() == "333300000001"  # ff02::1's multicast MAC
    assert frame[14 + 7] == 255  # hop limit, or receivers drop it
    assert packets.verify_icmpv6_checksum(frame)
    message = packets.parse_neighbour(frame)
    assert message.kind == packets.ICMPV6_NA and message.target == "2001:db8:0:1::100"
    assert message.flags & packets.NA_FLAG_OVERRIDE and not message.flags & \
        packets.NA_FLAG_SOLICITED
    assert frame[-8:] == bytes([2, 1]) + packets.mac_bytes(MAC)  # target link-layer option


def test_dad_solicitation_goes_to_the_solicited_node_group_from_unspecified():
    frame = packets.dad_solicitation(MAC, "2001:db8:0:1::100")
    assert packets.solicited_node("2001:db8:0:1::100") == ipaddress.IPv6Address("ff02::1:ff00:100")
    assert frame[:6].hex() == "3333ff000100"
    assert packets.verify_icmpv6_checksum(frame)
    message = packets.parse_neighbour(frame)
    assert message.kind == packets.ICMPV6_NS and message.source == "::"
    other = "02:76:6c:00:00:02"
    answer = packets.parse_neighbour(packets.unsolicited_na(other, "2001:db8:0:1::100"))
    assert packets.neighbour_conflict(answer, "2001:db8:0:1::100", MAC)
    assert not packets.neighbour_conflict(answer, "2001:db8:0:1::101", MAC)
    assert not packets.neighbour_conflict(message, "2001:db8:0:1::100", MAC)  # our own probe


def test_burst_schedule_matches_heartbeats_send_arp():
    # Captured from heartbeat 3.0.6: 10 rounds, 500 ms -> 20 frames 250 ms apart over 4.75 s.
    schedule = packets.announcement_schedule(10, 0.5)
    assert len(schedule) == 20
    assert [kind for _, kind in schedule[:4]] == ["reply", "request", "reply", "request"]
    assert schedule[-1][0] == 4.75
    assert all(abs((b[0] - a[0]) - 0.25) < 1e-9 for a, b in itertools.pairwise(schedule))
    assert packets.announcement_schedule(0, 0.5) == []


def test_the_probe_waits_a_multiple_of_a_neighbours_round_trip_within_bounds():
    from vigil.net.link import MIN_PROBE_WINDOW, RTT_FACTOR, probe_window
    assert probe_window(None, 0.2) == 0.2  # nothing measured: the whole timeout
    assert probe_window(0.0001, 0.2) == MIN_PROBE_WINDOW  # a LAN: a few milliseconds
    assert probe_window(0.002, 0.2) == RTT_FACTOR * 0.002
    assert probe_window(0.5, 0.2) == 0.2  # a slow segment: never beyond the timeout
