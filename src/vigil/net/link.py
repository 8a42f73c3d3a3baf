"""Raw frames on one interface (AF_PACKET): announcement bursts and duplicate probes.

The sockets live in the calling thread's network namespace, so an agent run
inside a lab host (or a real node) speaks on that host's segment only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import threading
from collections.abc import Callable

from vigil.net import packets

PACKET_OUTGOING = 4


def open_packet_socket(ifname: str, ethertype: int) -> socket.socket:
    """A non-blocking AF_PACKET socket bound to `ifname` for one ethertype."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        sock.bind((ifname, ethertype))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


#: Send-only packet sockets, kept open per (network namespace, interface).
_senders: dict[tuple[int, str], socket.socket] = {}
_senders_lock = threading.Lock()


def _sender(ifname: str) -> tuple[tuple[int, str], socket.socket]:
    """A send-only AF_PACKET socket for `ifname` in this thread's namespace, kept open.

    Protocol 0 registers no receive hook, and it is never closed: opening a
    socket bound to a protocol and closing any packet socket each wait for an
    RCU grace period (synchronize_net), 6 to 17 ms on a loaded machine, which
    every takeover would otherwise pay before its first gratuitous ARP.
    """
    key = (os.stat("/proc/thread-self/ns/net").st_ino, ifname)
    with _senders_lock:
        sock = _senders.get(key)
        if sock is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.bind((ifname, 0))
            except OSError:
                sock.close()
                raise
            _senders[key] = sock
    return key, sock


def send_frames(ifname: str, frames: list[bytes]) -> None:
    """Send complete Ethernet frames on `ifname` at once."""
    for attempt in (1, 2):
        key, sock = _sender(ifname)
        try:
            for frame in frames:
                sock.send(frame)
            return
        except OSError:
            # The interface went away (and maybe came back with a new index):
            # forget the socket; one fresh try, then the error is the caller's.
            with _senders_lock:
                if _senders.get(key) is sock:
                    del _senders[key]
            sock.close()
            if attempt == 2:
                raise


def announcement_frames(mac: str, ip: str) -> dict[str, bytes]:
    """The frames a burst is made of, keyed by the schedule's names."""
    if ipaddress.ip_address(ip).version == 6:
        na = packets.unsolicited_na(mac, ip)
        return {"reply": na, "request": na}
    reply, request = packets.gratuitous_arp_pair(mac, ip)
    return {"reply": reply, "request": request}


async def announce(ifname: str, mac: str, ip: str, count: int, interval: float,
                   first_sent: asyncio.Event | None = None,
                   frames: dict[str, bytes] | None = None) -> int:
    """Send a burst of gratuitous ARPs (IPv4) or unsolicited NAs (IPv6); returns frames sent.

    IPv4 follows send_arp (reply and request alternating, interval/2 apart);
    IPv6 sends one advertisement every interval/2 as well, so both bursts last
    as long for the same settings. `frames` ("reply", "request") replaces the
    frames built from `mac` and `ip` (a hand-off announces another host's MAC).
    """
    if frames is None:
        frames = announcement_frames(mac, ip)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    try:
        for offset, kind in packets.announcement_schedule(count, interval):
            delay = started + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            with contextlib.suppress(OSError):  # a link going away ends nothing else
                send_frames(ifname, [frames[kind]])
                sent += 1
            if first_sent is not None and not first_sent.is_set():
                first_sent.set()
    finally:
        if first_sent is not None:
            first_sent.set()
    return sent


async def probe_address(ifname: str, mac: str, ip: str, timeout: float,
                        probes: int = 2) -> str | None:
    """Ask the segment whether another host holds `ip`; its MAC if one answers.

    IPv4: RFC 5227 ARP probes; IPv6: DAD neighbour solicitations. Probes are
    spread over the first half of `timeout`, answers awaited until it ends.
    """
    version = ipaddress.ip_address(ip).version
    if version == 6:
        ethertype = packets.ETH_P_IPV6
        probe = packets.dad_solicitation(mac, ip)

        def conflict(frame: bytes) -> str | None:
            message = packets.parse_neighbour(frame)
            if message and packets.neighbour_conflict(message, ip, mac):
                return message.eth_src
            return None
    else:
        ethertype = packets.ETH_P_ARP
        probe = packets.arp_probe(mac, ip)

        def conflict(frame: bytes) -> str | None:
            packet = packets.parse_arp(frame)
            if packet and packets.arp_conflict(packet, ip, mac):
                return packet.sender_mac
            return None

    return await _probe(ifname, ethertype, probe, conflict, timeout, probes)


async def _probe(ifname: str, ethertype: int, probe: bytes,
                 conflict: Callable[[bytes], str | None], timeout: float,
                 probes: int) -> str | None:
    loop = asyncio.get_running_loop()
    sock = open_packet_socket(ifname, ethertype)
    found: asyncio.Future[str] = loop.create_future()

    def readable() -> None:
        while True:
            try:
                frame, address = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(address) > 2 and address[2] == PACKET_OUTGOING:
                continue
            holder = conflict(frame)
            if holder and not found.done():
                found.set_result(holder)

    loop.add_reader(sock.fileno(), readable)
    try:
        deadline = loop.time() + timeout
        gap = timeout / 2 / max(probes, 1)
        for _ in range(max(probes, 1)):
            with contextlib.suppress(OSError):
                sock.send(probe)
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(found), gap)
        remaining = deadline - loop.time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(found), remaining)
        return found.result() if found.done() else None
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
        if not found.done():
            found.cancel()
