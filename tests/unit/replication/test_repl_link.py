"""The peer link's transport over real TCP on loopback: order and content of mixed messages."""

from __future__ import annotations

import asyncio
import os

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
