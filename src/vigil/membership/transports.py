"""The sockets of the media: bcast, mcast, mcast6, ucast and ucast6 on udpport.

Each medium gets one UDP socket bound to its interface (SO_BINDTODEVICE), so
a packet is attributed to the link it really came over. Sockets are
non-blocking and read by the event loop; a send that fails (cable out,
buffer full) is counted, never raised: heartbeats must keep going on the
other links.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections import Counter
from collections.abc import Callable

from vigil.errors import EnvironmentProblem
from vigil.membership.media import Medium

#: Receive callback: (datagram, link name)
Receiver = Callable[[bytes, str], None]
RECEIVE_BUFFER = 1 << 20
MAX_DATAGRAM = 65535


def interface_info(dev: str) -> tuple[int, str | None]:
    """(ifindex, IPv4 broadcast address) of an interface, read with netlink."""
    from vigil.kernel.netlink import iproute

    with iproute() as ipr:
        found = ipr.link_lookup(ifname=dev)
        if not found:
            raise EnvironmentProblem(f"no network interface {dev}")
        index = int(found[0])
        broadcast = None
        for address in ipr.get_addr(index=index, family=socket.AF_INET):
            broadcast = address.get("IFA_BROADCAST")
            if broadcast is None and address.get("IFA_ADDRESS"):
                network = ipaddress.ip_network(
                    f"{address.get('IFA_ADDRESS')}/{address['prefixlen']}", strict=False)
                broadcast = str(network.broadcast_address)
            if broadcast:
                break
        return index, broadcast


class MediumSocket:
    """One medium: its socket, its destination, its counters."""

    def __init__(self, medium: Medium, receiver: Receiver,
                 info: Callable[[str], tuple[int, str | None]] = interface_info):
        self.medium = medium
        self.receiver = receiver
        self.counters: Counter[str] = Counter()
        self.last_error: str | None = None
        self._info = info
        self.sock: socket.socket | None = None
        self.destination: tuple = ()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def link(self) -> str:
        return self.medium.link

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        medium = self.medium
        index, broadcast = self._info(medium.dev)
        family = socket.AF_INET6 if medium.family == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, medium.dev.encode())
            if medium.kind == "bcast":
                if broadcast is None:
                    raise EnvironmentProblem(f"bcast {medium.dev}: the interface has no "
                                             "IPv4 address")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.bind(("", medium.port))
                self.destination = (broadcast, medium.port)
            elif medium.kind == "ucast":
                sock.bind(("", medium.port))
                self.destination = (medium.address, medium.port)
            elif medium.kind == "mcast":
                group = socket.inet_aton(medium.address or "")
                sock.bind((medium.address, medium.port))
                mreqn = group + struct.pack("=4si", b"\0" * 4, index)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, medium.ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, medium.loop)
                self.destination = (medium.address, medium.port)
            elif medium.kind == "mcast6":
                group = socket.inet_pton(socket.AF_INET6, medium.address or "")
                sock.bind((medium.address, medium.port, 0, index))
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                                group + struct.pack("=I", index))
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, medium.ttl)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, medium.loop)
                self.destination = (medium.address, medium.port, 0, index)
            elif medium.kind == "ucast6":
                peer = (medium.address or "").split("%")[0]
                sock.bind(("::", medium.port))
                scope = index if ipaddress.ip_address(peer).is_link_local else 0
                self.destination = (peer, medium.port, 0, scope)
        except OSError as exc:
            sock.close()
            raise EnvironmentProblem(f"{medium}: cannot open the socket: {exc.strerror}") \
                from None
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._loop = loop
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        for _ in range(64):  # drain, but let the loop breathe under a flood
            try:
                datagram = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.counters["receive_errors"] += 1
                self.last_error = exc.strerror
                return
            self.counters["received"] += 1
            self.receiver(datagram, self.link)

    def send(self, datagram: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(datagram, self.destination)
            self.counters["sent"] += 1
        except OSError as exc:  # ENETUNREACH, ENOBUFS, EAGAIN...: the next heartbeat retries
            self.counters["send_errors"] += 1
            self.last_error = exc.strerror

    def close(self) -> None:
        if self.sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def report(self) -> dict[str, object]:
        return {"medium": str(self.medium), "link": self.link, **self.counters,
                "last_error": self.last_error}
