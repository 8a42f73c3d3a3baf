"""The userspace proxy's worker processes on loopback: every worker follows the
table, counters are summed over the processes, a dead worker is noticed and
replaced, stop leaves no process, and a connection carries bytes both ways and
a half-close through whichever process took it."""

import asyncio
import os
import signal
import socket

import pytest

from vigil.director.backends.proxy_workers import default_workers, shared_table
from vigil.director.backends.userspace import UserspaceBackend
from vigil.director.codec import table_from_json
from vigil.lvs.table import RealServer, ServiceKey, Table, VirtualService
from vigil.testing.loopback import apply, ask, free_port, named_server, service


async def until(condition, seconds: float = 10.0, interval: float = 0.02):
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(interval)


async def worker_tables(backend) -> list[Table]:
    return [table_from_json(await w.ask({"op": "read"})) for w in backend.workers]


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def test_default_is_one_process_and_the_variable_asks_for_more(monkeypatch):
    monkeypatch.delenv("VIGIL_PROXY_WORKERS", raising=False)
    assert default_workers() == 1
    monkeypatch.setenv("VIGIL_PROXY_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("VIGIL_PROXY_WORKERS", "cpus")
    assert default_workers() == min(64, os.cpu_count() or 1)
    monkeypatch.setenv("VIGIL_PROXY_WORKERS", "many")
    assert default_workers() == 1
    monkeypatch.setenv("VIGIL_PROXY_WORKERS", "1000")
    assert default_workers() == 64


def test_every_worker_follows_each_table_change_and_counters_are_summed():
    async def scenario():
        one, port1 = await named_server("rs1")
        two, port2 = await named_server("rs2")
        vport, uport, pport = free_port(), free_port(socket.SOCK_DGRAM), free_port()
        backend = UserspaceBackend(workers=3)
        await backend.start()
        assert len(backend.workers) == 2 and all(w.ready for w in backend.workers)
        rs1, rs2 = RealServer("127.0.0.2", port1), RealServer("127.0.0.2", port2)
        udp = VirtualService(ServiceKey.udp("127.0.0.1", uport), scheduler="rr", reals=(rs1,))
        persistent = service(pport, [rs1, rs2], persistent=300)
        first = Table.of([service(vport, [rs1]), udp, persistent])
        await apply(backend, first)
        # the workers serve the TCP service without persistence; UDP and -p stay here
        assert await worker_tables(backend) == [Table.of([service(vport, [rs1])])] * 2
        assert shared_table(first) == Table.of([service(vport, [rs1])])

        # rs1 quiesced, rs2 added: no process sends a new connection to rs1
        second = Table.of([service(vport, [rs1.with_weight(0), rs2]), udp, persistent])
        await apply(backend, second)
        assert await worker_tables(backend) == [shared_table(second)] * 2
        answers = [await ask(vport, f"n{i}") for i in range(40)]
        assert answers == [f"rs2:n{i}" for i in range(40)]

        stats = (await backend.stats())[ServiceKey.tcp("127.0.0.1", vport)]
        assert stats.counters.conns == 40  # over three processes, each counted once
        assert stats.reals[rs2.key].counters.conns == 40
        assert stats.reals[rs1.key].counters.conns == 0
        assert stats.counters.in_bytes == sum(len(f"n{i}\n") for i in range(40))
        assert stats.counters.out_bytes == sum(len(f"rs2:n{i}\n") for i in range(40))
        # the kernel spread them: more than one process took connections
        served = [w.last_stats[ServiceKey.tcp("127.0.0.1", vport)].counters.conns
                  for w in backend.workers]
        served.append(40 - sum(served))  # this process's share
        assert sum(1 for n in served if n) >= 2

        await backend.zero(None)
        stats = (await backend.stats())[ServiceKey.tcp("127.0.0.1", vport)]
        assert stats.counters.conns == 0
        await backend.close()
        one.close()
        two.close()

    asyncio.run(scenario())


def test_a_dead_worker_is_noticed_and_replaced_and_stop_leaves_no_process():
    async def scenario():
        one, port1 = await named_server("rs1")
        vport = free_port()
        backend = UserspaceBackend(workers=2)
        await backend.start()
        rs1 = RealServer("127.0.0.2", port1)
        await apply(backend, Table.of([service(vport, [rs1])]))
        for i in range(20):
            assert await ask(vport, f"a{i}") == f"rs1:a{i}"
        before = (await backend.stats())[ServiceKey.tcp("127.0.0.1", vport)].counters.conns
        assert before == 20
        worker = backend.workers[0]
        old = worker.pid
        os.kill(old, signal.SIGKILL)
        await until(lambda: backend.worker_deaths == 1 and worker.pid != old and worker.ready)
        # the new worker has the table and serves; the dead one's counts are kept
        await until(lambda: not alive(old))
        assert await worker_tables(backend) == [Table.of([service(vport, [rs1])])]
        for i in range(20):
            assert await ask(vport, f"b{i}") == f"rs1:b{i}"
        after = (await backend.stats())[ServiceKey.tcp("127.0.0.1", vport)].counters.conns
        assert after == 40  # read just before the kill: nothing of the dead one was lost
        pids = [w.pid for w in backend.workers]
        await backend.close()
        assert pids and not any(alive(pid) for pid in pids)
        one.close()

    asyncio.run(scenario())


def test_a_worker_whose_director_is_gone_exits():
    async def scenario():
        backend = UserspaceBackend(workers=2)
        await backend.start()
        worker = backend.workers[0]
        pid = worker.pid
        backend._closing = True  # as if the director had died: nobody replaces it
        worker.hang_up()
        await until(lambda: worker.process.returncode is not None)
        assert not alive(pid)
        await backend.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("workers", [1, 2])
def test_bytes_both_ways_and_a_half_close_pass_through_every_process(workers):
    """A client sends 1 MiB and shuts its side down; the server reads to the end,
    answers with 2 MiB and closes: whichever process took the connection, the
    bytes arrive whole and each end sees the other's FIN."""
    async def server_side(reader, writer):
        got = 0
        while chunk := await reader.read(65536):  # to the client's FIN
            got += len(chunk)
        writer.write(got.to_bytes(8, "big") + b"x" * (2 << 20))
        await writer.drain()
        writer.close()

    async def scenario():
        real = await asyncio.start_server(server_side, "127.0.0.2", 0)
        port = real.sockets[0].getsockname()[1]
        vport = free_port()
        backend = UserspaceBackend(workers=workers)
        await backend.start()
        await apply(backend, Table.of([service(vport, [RealServer("127.0.0.2", port)])]))
        key = ServiceKey.tcp("127.0.0.1", vport)
        # an open connection's bytes show while it is open, not only at its end
        held_reader, held_writer = await asyncio.open_connection("127.0.0.1", vport)
        held_writer.write(b"z" * 1000)
        await held_writer.drain()

        async def held_counted():
            return (await backend.stats())[key].counters.in_bytes == 1000

        async with asyncio.timeout(10):
            while not await held_counted():
                await asyncio.sleep(0.02)
        held_writer.write_eof()
        assert int.from_bytes((await held_reader.read())[:8], "big") == 1000
        held_writer.close()
        for _ in range(6):  # over both processes (the kernel hashes each connection)
            reader, writer = await asyncio.open_connection("127.0.0.1", vport)
            writer.write(b"y" * (1 << 20))
            await writer.drain()
            writer.write_eof()  # half-close: the answer must still come back
            answer = await asyncio.wait_for(reader.read(), 10)  # to the server's FIN
            assert int.from_bytes(answer[:8], "big") == 1 << 20
            assert answer[8:] == b"x" * (2 << 20)
            writer.close()

        async def counted():
            stats = (await backend.stats())[key]
            return stats.counters.in_bytes, stats.counters.out_bytes, stats.counters.conns

        async with asyncio.timeout(10):
            while await counted() != ((6 << 20) + 1000, 7 * ((2 << 20) + 8), 7):
                await asyncio.sleep(0.02)
        await backend.close()
        real.close()

    asyncio.run(scenario())
