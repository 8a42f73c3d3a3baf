"""The peer link's transport: TCP with few copies of block data.

A `BufferedProtocol` receives into a staging buffer, where headers and small
messages are parsed in place; a large body (a replicated 1 MiB write) gets its
own buffer and the kernel copies the rest of it straight there (recv_into),
instead of the several copies and buffer shifts of a StreamReader. Messages
queue for `read()`; reading pauses while too many bytes wait unread. Sending
writes straight to the transport; `drain()` waits until the transport's buffer
is empty (the kernel's socket buffer keeps the wire busy meanwhile). A block
range of a file (a resync's chunk) is sent with `sendfile` while nothing waits
in that buffer: straight from the page cache, no copy through Python.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any, cast

from vigil.replication import wire
from vigil.replication.config import Buffers

STAGING = 256 * 1024
DIRECT_BODY = 64 * 1024  # bodies at least this large are received in place
SOON_LIMIT = 256 * 1024  # write_soon sends at once when this much waits


class LinkClosed(ConnectionError):
    pass


class PeerProtocol(asyncio.BufferedProtocol):
    def __init__(self, buffers: Buffers | None = None) -> None:
        self.buffers = buffers or Buffers()
        self.transport: asyncio.Transport | None = None
        self._staging = bytearray(STAGING)
        self._view = memoryview(self._staging)
        self._filled = 0
        self._body: bytearray | None = None
        self._body_filled = 0
        self._pending_header: tuple[int, int, int] | None = None
        self._messages: collections.deque[wire.Message] = collections.deque()
        self._queued_bytes = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False
        self.error: BaseException | None = None
        self.closed = False
        #: When set, messages are handed to it as they arrive instead of queued.
        self.on_message: Callable[[wire.Message], None] | None = None
        #: small until the peer is authenticated: 8 bytes must not buy a 32 MiB buffer
        self.max_body = wire.MAX_BODY_UNAUTHENTICATED
        self._socket_fd = -1
        #: small messages of this turn of the event loop, sent together (write_soon)
        self._soon: list[bytes] = []
        self._soon_bytes = 0

    # -- asyncio callbacks ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _size_buffers(sock, self.buffers)
            self._socket_fd = sock.fileno()
        # paused whenever anything waits in the transport's buffer: `drain()` returns
        # once it is empty, when `write_file` can send from the page cache again
        transport.set_write_buffer_limits(high=0, low=0)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body is not None:
            return memoryview(self._body)[self._body_filled:]
        if self._filled == len(self._staging):  # cannot happen: parse() always makes room
            raise wire.ProtocolError("staging buffer full")
        return self._view[self._filled:]

    def buffer_updated(self, nbytes: int) -> None:
        try:
            if self._body is not None:
                self._body_filled += nbytes
                if self._body_filled == len(self._body):
                    self._finish_body()
                    self._parse()
                return
            self._filled += nbytes
            self._parse()
        except Exception as exc:  # whatever the peer sent: this link ends, nothing else
            self._fail(exc if isinstance(exc, wire.ProtocolError)
                       else wire.ProtocolError(f"{type(exc).__name__}: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def eof_received(self) -> bool:
        self._fail(LinkClosed("the peer closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or LinkClosed("connection lost"))
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- parsing ---------------------------------------------------------------------------
    def _parse(self) -> None:
        position = 0
        data = self._staging
        while self._filled - position >= wire.HEADER.size:
            magic, kind, flags, length = wire.HEADER.unpack_from(data, position)
            if magic != wire.MAGIC:
                raise wire.ProtocolError(f"bad magic {magic:#06x}")
            if length > self.max_body:
                raise wire.ProtocolError(f"message of {length} bytes is too large")
            start = position + wire.HEADER.size
            available = self._filled - start
            if length >= DIRECT_BODY and available < length:
                # Receive the rest of this body in place.
                self._body = bytearray(length)
                self._body[:available] = self._view[start:self._filled]
                self._body_filled = available
                self._pending_header = (kind, flags, length)
                self._filled = 0
                return
            if available < length:
                break
            self._deliver(wire.decode(kind, flags, bytes(data[start:start + length])))
            position = start + length
        if position:
            remaining = self._filled - position
            data[:remaining] = data[position:self._filled]
            self._filled = remaining

    def _finish_body(self) -> None:
        assert self._body is not None and self._pending_header is not None
        kind, flags, _ = self._pending_header
        body, self._body, self._pending_header = self._body, None, None
        self._body_filled = 0
        self._deliver(wire.decode(kind, flags, body))

    def _deliver(self, message: wire.Message) -> None:
        if self.on_message is not None and not self._messages:
            try:
                self.on_message(message)
            except Exception as exc:  # the handler's verdict on the link (goodbye, bad data)
                self._fail(exc)
                if self.transport is not None:
                    self.transport.close()
            return
        self._messages.append(message)
        self._queued_bytes += len(getattr(message, "payload", b""))
        self._readable.set()
        if self._queued_bytes > self.buffers.pause_bytes and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.closed = True
        self._readable.set()

    # -- the session's side ----------------------------------------------------------------
    def queued(self) -> bool:
        return bool(self._messages)

    async def read(self) -> wire.Message:
        while not self._messages:
            if self.error is not None:
                raise self.error if isinstance(self.error, Exception) else LinkClosed()
            self._readable.clear()
            await self._readable.wait()
        message = self._messages.popleft()
        self._queued_bytes -= len(getattr(message, "payload", b""))
        if self._paused and self._queued_bytes < self.buffers.pause_bytes // 2 and self.transport:
            self._paused = False
            self.transport.resume_reading()
        return message

    async def drain(self) -> None:
        if self.closed:
            raise LinkClosed("link closed")
        await self._writable.wait()

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport else 0

    def write(self, data: Any) -> None:
        if self.transport is not None and not self.closed:
            if self._soon:
                self._flush_soon()
            self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Queue a small message (an acknowledgement, a 4 KiB resync block) to go with
        the others queued in this turn of the event loop: one send for a burst of them,
        not one each. Anything written meanwhile goes after them, in order."""
        if self.transport is None or self.closed:
            return
        if not self._soon:
            asyncio.get_running_loop().call_soon(self._flush_soon)
        self._soon.append(data)
        self._soon_bytes += len(data)
        if self._soon_bytes >= SOON_LIMIT:
            self._flush_soon()

    def _flush_soon(self) -> None:
        if not self._soon:
            return
        queued, self._soon, self._soon_bytes = self._soon, [], 0
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(queued))

    def write_file(self, head: bytes, fd: int, offset: int, length: int) -> None:
        """Send `head`, then `length` bytes of file `fd` from `offset`.

        While the transport's buffer is empty the bytes go with `sendfile`, from the
        page cache to the socket; what the socket does not take at once is read and
        queued after it, in order. A read error raises OSError with `head` (and maybe
        part of the body) already sent: the caller must close the link.
        """
        if self.transport is None or self.closed:
            return
        self.write(head)
        if self._socket_fd >= 0 and self.transport.get_write_buffer_size() == 0:
            try:
                sent = os.sendfile(self._socket_fd, fd, offset, length)
            except OSError:  # the socket is full or gone, or the file cannot splice:
                sent = 0     # the read below says which (a disk error raises there)
            offset += sent
            length -= sent
        if length:
            rest = os.pread(fd, length, offset)
            if len(rest) != length:
                raise OSError(errno.EIO, f"short read at {offset}: {len(rest)} of {length}")
            self.transport.write(rest)

    def close(self) -> None:
        self._flush_soon()
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._readable.set()
        self._writable.set()


#: Linux's SO_SNDBUFFORCE / SO_RCVBUFFORCE (not in the socket module)
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33


def _size_buffers(sock: socket.socket, buffers: Buffers) -> None:
    """Fixed socket buffers as DRBD sets them: beyond net.core's maxima when root may."""
    for size, forced, plain in ((buffers.sndbuf, SO_SNDBUFFORCE, socket.SO_SNDBUF),
                                (buffers.rcvbuf, SO_RCVBUFFORCE, socket.SO_RCVBUF)):
        if size:
            try:
                sock.setsockopt(socket.SOL_SOCKET, forced, size)
            except OSError:  # not CAP_NET_ADMIN: capped at wmem_max / rmem_max
                sock.setsockopt(socket.SOL_SOCKET, plain, size)


async def connect(host: str, port: int, local: str, timeout: float,
                  buffers: Buffers | None = None) -> PeerProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: PeerProtocol(buffers), host, port,
                               local_addr=(local, 0)), timeout)
    return protocol


#: accepted connections waiting for the node to look at them; more are closed at once
MAX_PENDING = 4


async def listen(host: str, port: int, accepted: asyncio.Queue[PeerProtocol],
                 peer: str | None = None,
                 refused: Callable[[str, str], None] | None = None,
                 buffers: Callable[[], Buffers] = Buffers) -> asyncio.Server:
    """Accept connections from `peer` only (DRBD 9's "unexpected connection" refusal)."""
    loop = asyncio.get_running_loop()
    expected = ipaddress.ip_address(peer) if peer else None

    class Accepted(PeerProtocol):
        def __init__(self) -> None:
            super().__init__(buffers())  # now, not at listen: `adjust` may change them

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            address = str((transport.get_extra_info("peername") or ("?",))[0])
            why = None
            if expected is not None and _address(address) != expected:
                why = "unexpected connection: not the configured peer"
            elif accepted.qsize() >= MAX_PENDING:
                why = "too many connections waiting"
            if why is not None:
                self.closed = True
                transport.abort()
                if refused is not None:
                    refused(address, why)
                return
            accepted.put_nowait(self)

    return await loop.create_server(Accepted, host, port, reuse_address=True)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address
