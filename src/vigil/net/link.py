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
    """A non-blocking AF_PACKET socket bound to `ifname` for one ethertype.

    Created with protocol 0, then bound to the ethertype: a socket created with a
    protocol hooks in at once, and binding it then unhooks it first, which waits for
    an RCU grace period (synchronize_net), 6 to 17 ms that a takeover's probe paid.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, ethertype))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def close_later(sock: socket.socket) -> None:
    """Close a packet socket in a worker thread: closing one always waits for an RCU
    grace period (synchronize_net), which must not delay the address being added."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        sock.close()
        return
    loop.run_in_executor(None, sock.close)


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


#: with a measured round trip the probe waits this many of them...
RTT_FACTOR = 8
#: ...but never less than this
MIN_PROBE_WINDOW = 0.003


def probe_window(rtt: float | None, timeout: float) -> float:
    """How long to wait for a holder of the address: a multiple of the round trip a
    neighbour on the same segment took to answer an ARP probe (a holder answers as fast),
    bounded by `timeout`; the whole `timeout` when no neighbour was measured."""
    if rtt is None:
        return timeout
    return min(timeout, max(MIN_PROBE_WINDOW, RTT_FACTOR * rtt))


async def probe_address(ifname: str, mac: str, ip: str, timeout: float,
                        probes: int = 2, references: list[str] | None = None,
                        report: dict[str, float | None] | None = None) -> str | None:
    """Ask the segment whether another host holds `ip`; its MAC if one answers.

    IPv4: RFC 5227 ARP probes; IPv6: DAD neighbour solicitations. Probes are
    spread over the first half of `timeout`, answers awaited until it ends.
    With `references` (IPv4 neighbours on the segment, e.g. from the kernel's
    neighbour table) they are probed at the same moment, and the first one's
    answer sets the wait (`probe_window`): on a LAN a few milliseconds instead
    of the whole timeout. `report`, when given, receives the `window` waited and
    the `rtt` measured (None without one).
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
        references = None
    else:
        ethertype = packets.ETH_P_ARP
        probe = packets.arp_probe(mac, ip)
        wanted = set(references or ())

        def conflict(frame: bytes) -> str | None:
            packet = packets.parse_arp(frame)
            if packet and packets.arp_conflict(packet, ip, mac):
                return packet.sender_mac
            if packet and packet.op == packets.ARP_REPLY and packet.sender_ip in wanted:
                return REFERENCE_ANSWERED
            return None

    extra = [packets.arp_probe(mac, ref) for ref in (references or [])[:MAX_REFERENCES]]
    return await _probe(ifname, ethertype, probe, conflict, timeout, probes, extra, report)


#: what `conflict` says when a reference neighbour (not a holder) answered
REFERENCE_ANSWERED = "reference"
MAX_REFERENCES = 3


async def _probe(ifname: str, ethertype: int, probe: bytes,
                 conflict: Callable[[bytes], str | None], timeout: float,
                 probes: int, references: list[bytes] | None = None,
                 report: dict[str, float | None] | None = None) -> str | None:
    loop = asyncio.get_running_loop()
    sock = open_packet_socket(ifname, ethertype)
    found: asyncio.Future[str] = loop.create_future()
    measured: asyncio.Future[float] = loop.create_future()
    sent_at = loop.time()

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
            if holder == REFERENCE_ANSWERED:
                if not measured.done():
                    measured.set_result(loop.time() - sent_at)
            elif holder and not found.done():
                found.set_result(holder)

    loop.add_reader(sock.fileno(), readable)
    try:
        if references:
            return await _probe_measured(sock, probe, references, found, measured, timeout,
                                         probes, report if report is not None else {})
        if report is not None:
            report.update(window=timeout, rtt=None)
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
        close_later(sock)
        for future in (found, measured):
            if not future.done():
                future.cancel()


async def _probe_measured(sock: socket.socket, probe: bytes, references: list[bytes],
                          found: asyncio.Future[str], measured: asyncio.Future[float],
                          timeout: float, probes: int,
                          report: dict[str, float | None]) -> str | None:
    """Probe the address and the reference neighbours at once; wait as the first
    neighbour's round trip says (`probe_window`), the whole timeout if none answers."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for frame in [probe] * max(probes, 1) + references:
        with contextlib.suppress(OSError):
            sock.send(frame)
    window = timeout
    report.update(window=timeout, rtt=None)
    await asyncio.wait({found, measured}, timeout=timeout,
                       return_when=asyncio.FIRST_COMPLETED)
    if found.done():
        return found.result()
    if measured.done():
        window = probe_window(measured.result(), timeout)
        report.update(window=window, rtt=measured.result())
    remaining = started + window - loop.time()
    if remaining > 0:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(found), remaining)
    return found.result() if found.done() else None
