"""The peer link's transport over real TCP on loopback: order and content of mixed messages."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from vigil.replication import link, wire


def test_mixed_messages_arrive_in_order_with_large_bodies_in_place():
    async def scenario():
        accepted: asyncio.Queue[link.PeerProtocol] = asyncio.Queue()
        server = await link.listen("127.0.0.1", 0, accepted)
        port = server.sockets[0].getsockname()[1]
        client = await link.connect("127.0.0.1", port, "127.0.0.1", 5)
        peer = await asyncio.wait_for(accepted.get(), 5)
        peer.max_body = wire.MAX_BODY  # as the node sets it once the peer is authenticated
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
