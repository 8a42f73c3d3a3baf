"""Delay every frame between two interfaces by a fixed time: netem's delay in userspace.

This kernel has no `sch_netem`. The lab's delay fault takes a host's port off its
bridge and puts this relay between the port and a veth on the bridge: each frame
read on one side (ARP, IP, anything) is written to the other `delay` seconds later,
in order. Packet sockets with virtio-net headers pass the kernel's segmentation and
checksum offloads through unchanged, so large TCP segments cross as they came.
At most `MAX_HELD` frames are held (more are dropped, as by a full queue); on
SIGTERM what is held is written at once, as a link whose delay ends.

Run: `python -m vigil.testing.delay_relay IFACE IFACE DELAY` in the switch's namespace.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
#: frames held at once; more are dropped (a full queue)
MAX_HELD = 50000
#: the largest frame a packet socket hands over with its virtio-net header (64 KiB GSO)
FRAME_BUFFER = 65536 + 64


def open_side(ifname: str) -> socket.socket:
    """A packet socket on `ifname` that sees what arrives there and not what it sends."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


class Relay:
    """Frames in, frames out `delay` seconds later, in arrival order (pure but for I/O)."""

    def __init__(self, delay: float):
        self.delay = delay
        self.held: collections.deque[tuple[float, socket.socket, bytes]] = collections.deque()
        self.dropped = 0

    def take(self, now: float, out: socket.socket, frame: bytes) -> None:
        if len(self.held) >= MAX_HELD:
            self.dropped += 1
            return
        self.held.append((now + self.delay, out, frame))

    def due(self, now: float) -> list[tuple[socket.socket, bytes]]:
        ready = []
        while self.held and self.held[0][0] <= now:
            _, out, frame = self.held.popleft()
            ready.append((out, frame))
        return ready

    def everything(self) -> list[tuple[socket.socket, bytes]]:
        ready = [(out, frame) for _, out, frame in self.held]
        self.held.clear()
        return ready

    def wait(self, now: float) -> float | None:
        return max(0.0, self.held[0][0] - now) if self.held else None


def _send(out: socket.socket, frame: bytes) -> None:
    with contextlib.suppress(BlockingIOError, OSError):  # a side down: the frame is lost
        out.send(frame)


def run(first: str, second: str, delay: float) -> None:
    a, b = open_side(first), open_side(second)
    other = {a: b, b: a}
    relay = Relay(delay)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print(f"delaying {first} <-> {second} by {delay:g} s", flush=True)
    while not stopping:
        try:
            readable, _, _ = select.select([a, b], [], [], relay.wait(time.monotonic()))
        except InterruptedError:
            continue
        for sock in readable:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                for _ in range(256):
                    relay.take(time.monotonic(), other[sock], sock.recv(FRAME_BUFFER))
        for out, frame in relay.due(time.monotonic()):
            _send(out, frame)
    for out, frame in relay.everything():
        _send(out, frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="one interface")
    parser.add_argument("second", help="the other interface")
    parser.add_argument("delay", type=float, help="seconds each frame is held")
    args = parser.parse_args(argv)
    if not 0 < args.delay <= 60:
        parser.error("the delay must be more than 0 and at most 60 s")
    try:
        run(args.first, args.second, args.delay)
    except OSError as exc:
        print(f"delay_relay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
