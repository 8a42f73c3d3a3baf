"""The peer link's transport over real TCP on loopback: order and content of mixed messages."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from vigil.replication import link, wire


async def _authenticated_pair() -> tuple[asyncio.Server, link.PeerProtocol, link.PeerProtocol]:
    """A listening server, a client link and the server's end of it, past authentication."""
    accepted: asyncio.Queue[link.PeerProtocol] = asyncio.Queue()
    server = await link.listen("127.0.0.1", 0, accepted)
    port = server.sockets[0].getsockname()[1]
    client = await link.connect("127.0.0.1", port, "127.0.0.1", 5)
    peer = await asyncio.wait_for(accepted.get(), 5)
    peer.max_body = wire.MAX_BODY  # as the node sets it once the peer is authenticated
    return server, client, peer


def test_mixed_messages_arrive_in_order_with_large_bodies_in_place():
    async def scenario():
        server, client, peer = await _authenticated_pair()
        big = os.urandom(1 << 20)
        sent = []
        for i in range(40):
            message = (wire.Data(wire.T.DATA, i, i * 4096, big if i % 3 == 0 else big[:4096])
                       if i % 2 == 0 else wire.Ack(wire.T.WRITE_ACK, i))
            sent.append(message)
            client.write(message.encode())
        await client.drain()
        received = [await asyncio.wait_for(peer.read(), 10) for _ in sent]
        client.close()
        try:
            await asyncio.wait_for(peer.read(), 5)
            raise AssertionError("read after close must fail")
        except link.LinkClosed:
            pass
        server.close()
        return sent, received

    sent, received = asyncio.run(scenario())
    assert [m.type for m in received] == [m.type for m in sent]
    for a, b in zip(sent, received, strict=True):
        assert a == b


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sndbuf_and_rcvbuf_sizes_are_set_on_both_ends_and_max_buffers_bounds_the_queue(loop):
    """net's sndbuf-size and rcvbuf-size fix the sockets' buffers (the kernel doubles
    what it is given); max-buffers pages of unread messages pause reading. On both loops
    the daemon may run on (uvloop hands out its own socket objects)."""
    buffers = link.Buffers(sndbuf=3 << 20, rcvbuf=5 << 20, max_buffers=256)

    async def scenario():
        accepted: asyncio.Queue[link.PeerProtocol] = asyncio.Queue()
        server = await link.listen("127.0.0.1", 0, accepted, buffers=lambda: buffers)
        port = server.sockets[0].getsockname()[1]
        client = await link.connect("127.0.0.1", port, "127.0.0.1", 5, buffers)
        peer = await asyncio.wait_for(accepted.get(), 5)
        sizes = []
        for end in (client, peer):
            sock = end.transport.get_extra_info("socket")
            sizes.append((sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                          sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
        peer.max_body = wire.MAX_BODY
        for i in range(8):  # 2 MiB unread: beyond 256 pages (1 MiB)
            client.write(wire.Data(wire.T.DATA, i, 0, bytes(256 << 10)).encode())
        await client.drain()
        deadline = asyncio.get_running_loop().time() + 5
        while not peer._paused and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        paused = peer._paused
        for _ in range(8):
            await asyncio.wait_for(peer.read(), 5)
        resumed = not peer._paused
        client.close()
        server.close()
        return sizes, paused, resumed

    run = asyncio.run if loop == "asyncio" else pytest.importorskip("uvloop").run
    sizes, paused, resumed = run(scenario())
    assert sizes == [(6 << 20, 10 << 20)] * 2
    assert paused and resumed


def test_without_sizes_the_kernel_autotunes():
    async def scenario():
        accepted: asyncio.Queue[link.PeerProtocol] = asyncio.Queue()
        server = await link.listen("127.0.0.1", 0, accepted)
        client = await link.connect("127.0.0.1", server.sockets[0].getsockname()[1],
                                    "127.0.0.1", 5)
        sock = client.transport.get_extra_info("socket")
        size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        client.close()
        server.close()
        return size

    assert asyncio.run(scenario()) < (6 << 20)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_file_ranges_and_batched_small_messages_arrive_whole_and_in_order(loop, tmp_path):
    """Resync chunks go from the page cache (sendfile) while nothing waits in the
    transport, read and queued otherwise; small messages of one event-loop turn go in one
    send. However the sends mix, the peer reads every message whole, in the order sent."""
    backing = tmp_path / "disk"
    content = os.urandom(8 << 20)
    backing.write_bytes(content)

    async def scenario():
        server, client, peer = await _authenticated_pair()
        fd = os.open(backing, os.O_RDONLY)
        sent: list[wire.Message] = []
        try:
            for i in range(8):  # 8 MiB at once: more than the socket takes, so some queue
                offset = i << 20
                head = wire.Data(wire.T.RS_DATA, 0, offset, b"").head(payload_length=1 << 20)
                client.write_file(head, fd, offset, 1 << 20)
                body = content[offset:offset + (1 << 20)]
                sent.append(wire.Data(wire.T.RS_DATA, 0, offset, body))
                ack = wire.Range(wire.T.RS_ACK, i * 4096, 4096)
                client.write_soon(ack.encode())
                sent.append(ack)
            with pytest.raises(OSError, match="short read"):  # past the end of the file
                client.write_file(b"", fd, len(content), 4096)
        finally:
            os.close(fd)
        received = [await asyncio.wait_for(peer.read(), 10) for _ in sent]
        client.close()
        server.close()
        return sent, received

    run = asyncio.run if loop == "asyncio" else pytest.importorskip("uvloop").run
    sent, received = run(scenario())
    assert len(received) == len(sent)
    for a, b in zip(sent, received, strict=True):
        assert a.type == b.type
        if isinstance(a, wire.Data):
            assert b.offset == a.offset and bytes(b.payload) == a.payload
        else:
            assert a == b


def test_small_resync_ranges_are_batched_only_for_a_peer_that_says_it_takes_them():
    from vigil.replication.node import Session

    session = Session(link.PeerProtocol())
    assert not session.batches_resync  # before the handshake, or an older vigil: one by one
    session.peer = {"features": [wire.FEATURE_RS_BATCH]}
    assert session.batches_resync


def test_a_file_range_never_overtakes_what_waits_in_the_transport(tmp_path):
    """With bytes still queued in the transport, a file range is queued after them:
    sent straight to the socket it would arrive before them."""
    backing = tmp_path / "disk"
    backing.write_bytes(b"F" * 8192)

    class Queueing:
        """A transport that still holds earlier bytes: everything written queues here."""

        def __init__(self) -> None:
            self.queued: list[bytes] = [b"earlier"]

        def write(self, data: bytes) -> None:
            self.queued.append(bytes(data))

        def get_write_buffer_size(self) -> int:
            return sum(len(part) for part in self.queued)

    protocol = link.PeerProtocol()
    transport = Queueing()
    protocol.transport = transport  # type: ignore[assignment]
    ours, theirs = socket.socketpair()
    try:
        protocol._socket_fd = ours.fileno()
        fd = os.open(backing, os.O_RDONLY)
        try:
            protocol.write_file(b"head", fd, 0, 8192)
        finally:
            os.close(fd)
        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):
            theirs.recv(1)  # nothing went around the queue
        assert b"".join(transport.queued) == b"earlier" + b"head" + b"F" * 8192
    finally:
        ours.close()
        theirs.close()
