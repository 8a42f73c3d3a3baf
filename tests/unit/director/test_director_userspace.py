"""The userspace proxy on loopback: balancing, quiescing, failover to the next
server, UDP, atomic apply, counters."""

import asyncio
import socket

import pytest

from vigil.director.backends import BackendError, choose
from vigil.director.backends.memory import MemoryBackend
from vigil.director.backends.userspace import (
    FD_RESERVE,
    ProxyLimits,
    UserspaceBackend,
    descriptor_budget,
)
from vigil.lvs.table import RealServer, ServiceKey, Table, VirtualService
from vigil.testing.loopback import apply, ask, free_port, named_server, service


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """Scheduling, limits and counters of one process, checked exactly; the worker
    processes have their own tests (test_director_proxy_workers.py)."""
    monkeypatch.setenv("VIGIL_PROXY_WORKERS", "1")


def test_round_robin_quiesce_keeps_open_connections_and_refused_servers_are_skipped():
    async def scenario():
        one, port1 = await named_server("rs1")
        two, port2 = await named_server("rs2")
        vport = free_port()
        backend = UserspaceBackend()
        await backend.start()
        rs1, rs2 = RealServer("127.0.0.2", port1), RealServer("127.0.0.2", port2)
        await apply(backend, Table.of([service(vport, [rs1, rs2])]))
        names = [(await ask(vport)).split(":")[0] for _ in range(4)]
        assert sorted(names) == ["rs1", "rs1", "rs2", "rs2"] and names[0] != names[1]

        # A long-lived connection to rs1 survives rs1's quiescing.
        reader, writer = await asyncio.open_connection("127.0.0.1", vport)
        writer.write(b"a\n")
        first = (await reader.readline()).decode()
        held = first.split(":")[0]
        quiet = rs1 if held == "rs1" else rs2
        other = "rs2" if held == "rs1" else "rs1"
        await apply(backend, Table.of([service(vport, [quiet.with_weight(0),
                                                       rs2 if quiet is rs1 else rs1])]))
        assert {(await ask(vport)).split(":")[0] for _ in range(4)} == {other}
        writer.write(b"b\n")
        assert (await reader.readline()).decode() == f"{held}:b\n"
        key = ServiceKey.tcp("127.0.0.1", vport)

        async def active_on_quiet():
            return (await backend.stats())[key].reals[quiet.key].active

        async with asyncio.timeout(5):  # the closed ones are counted out as they end
            while await active_on_quiet() != 1:
                await asyncio.sleep(0.01)
        stats = await backend.stats()
        assert stats[key].counters.conns == 9
        writer.close()

        # rs1 stops listening while still in the table: clients still get rs2.
        await apply(backend, Table.of([service(vport, [rs1, rs2])]))
        one.close()
        await one.wait_closed()
        assert {(await ask(vport)).split(":")[0] for _ in range(6)} == {"rs2"}
        await backend.close()
        two.close()

    asyncio.run(scenario())


def test_apply_is_all_or_nothing():
    async def scenario():
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        backend = UserspaceBackend()
        await backend.start()
        ok, clash = free_port(), taken
        desired = Table.of([service(ok, [RealServer("127.0.0.2", 9)]),
                            service(clash, [RealServer("127.0.0.2", 9)])])
        with pytest.raises(BackendError, match="cannot listen"):
            await apply(backend, desired)
        assert await backend.read() == Table()
        with socket.socket() as probe:  # the port of the first service was released
            probe.bind(("127.0.0.1", ok))
        fwm = Table.of([VirtualService(ServiceKey.fwm(3))])
        with pytest.raises(BackendError, match="kernel"):
            await apply(backend, fwm)
        await backend.close()
        busy.close()

    asyncio.run(scenario())


def test_udp_sessions_reach_a_real_server_and_come_back():
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(b"rs:" + data, addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self):
            self.got = asyncio.get_running_loop().create_future()

        def datagram_received(self, data, addr):
            self.got.set_result(data)

    async def scenario():
        loop = asyncio.get_running_loop()
        echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.2", 0))
        real_port = echo.get_extra_info("sockname")[1]
        vport = free_port(socket.SOCK_DGRAM)
        backend = UserspaceBackend()
        await backend.start()
        desired = Table.of([VirtualService(ServiceKey.udp("127.0.0.1", vport), scheduler="rr",
                                           reals=(RealServer("127.0.0.2", real_port),))])
        await apply(backend, desired)
        transport, client = await loop.create_datagram_endpoint(
            Client, remote_addr=("127.0.0.1", vport))
        transport.sendto(b"ping")
        assert await asyncio.wait_for(client.got, 5) == b"rs:ping"
        transport.close()
        await backend.close()
        echo.close()

    asyncio.run(scenario())


def test_persistence_keeps_a_client_on_one_server():
    async def scenario():
        one, port1 = await named_server("rs1")
        two, port2 = await named_server("rs2")
        vport = free_port()
        backend = UserspaceBackend()
        await backend.start()
        reals = [RealServer("127.0.0.2", port1), RealServer("127.0.0.2", port2)]
        await apply(backend, Table.of([service(vport, reals, persistent=300)]))
        names = {(await ask(vport)).split(":")[0] for _ in range(6)}
        assert len(names) == 1
        await backend.close()
        one.close()
        two.close()

    asyncio.run(scenario())


async def until(condition, seconds: float = 5.0, interval: float = 0.01):
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(interval)


async def closed_by_peer(reader, seconds: float = 5.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(100), seconds) == b""
    except ConnectionError:
        return True


def test_connections_beyond_the_descriptor_budget_are_refused_and_held_ones_still_work():
    async def scenario():
        real, port = await named_server("rs1")
        vport = free_port()
        backend = UserspaceBackend(ProxyLimits(max_descriptors=6))  # 3 connections
        await backend.start()
        await apply(backend, Table.of([service(vport, [RealServer("127.0.0.2", port)])]))
        held = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", vport)
            writer.write(b"x\n")
            assert (await reader.readline()) == b"rs1:x\n"
            held.append((reader, writer))
        reader, writer = await asyncio.open_connection("127.0.0.1", vport)
        assert await closed_by_peer(reader)  # the fourth: closed at once
        writer.close()
        assert backend.refused == {"connection": 1}
        for reader, writer in held:  # the held ones are untouched
            writer.write(b"y\n")
            assert (await reader.readline()) == b"rs1:y\n"
        held[0][1].close()
        await until(lambda: backend.descriptors == 4)
        assert (await ask(vport)) == "rs1:hi"  # room again
        for _, w in held[1:]:
            w.close()
        await backend.close()
        real.close()

    asyncio.run(scenario())


def test_idle_connections_are_closed_and_busy_ones_kept():
    async def scenario():
        real, port = await named_server("rs1")
        vport = free_port()
        backend = UserspaceBackend(ProxyLimits(max_descriptors=100, tcp_idle=0.4,
                                               sweep_every=0.05))
        await backend.start()
        await apply(backend, Table.of([service(vport, [RealServer("127.0.0.2", port)])]))
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", vport)
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", vport)
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < 1.0:  # the busy one talks every 0.1 s
            busy_writer.write(b"z\n")
            assert (await busy_reader.readline()) == b"rs1:z\n"
            await asyncio.sleep(0.1)
        assert await closed_by_peer(idle_reader, 0.1)  # closed meanwhile, not now
        busy_writer.write(b"still\n")
        assert (await busy_reader.readline()) == b"rs1:still\n"
        await until(lambda: backend.descriptors == 2)
        idle_writer.close()
        busy_writer.close()
        await backend.close()
        real.close()

    asyncio.run(scenario())


def test_a_flood_of_udp_sources_is_capped_and_an_existing_flow_keeps_working():
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            self.transport.sendto(b"rs:" + data, addr)

    async def scenario():
        loop = asyncio.get_running_loop()
        echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.2", 0))
        real_port = echo.get_extra_info("sockname")[1]
        vport = free_port(socket.SOCK_DGRAM)
        backend = UserspaceBackend(ProxyLimits(max_descriptors=5, udp_idle=0.5,
                                               sweep_every=0.05))
        await backend.start()
        await apply(backend, Table.of([VirtualService(
            ServiceKey.udp("127.0.0.1", vport), scheduler="rr",
            reals=(RealServer("127.0.0.2", real_port),))]))
        first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        first.bind(("127.0.0.1", 0))
        first.setblocking(False)
        first.sendto(b"one", ("127.0.0.1", vport))
        assert await asyncio.wait_for(loop.sock_recv(first, 100), 5) == b"rs:one"
        flood = []
        for _ in range(50):  # fifty new sources, one datagram each
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.sendto(b"flood", ("127.0.0.1", vport))
            flood.append(sock)
        await until(lambda: backend.refused.get("udp flow", 0) >= 45)
        assert backend.descriptors <= 5
        first.sendto(b"two", ("127.0.0.1", vport))  # the flow it had still works
        assert await asyncio.wait_for(loop.sock_recv(first, 100), 5) == b"rs:two"
        await until(lambda: backend.descriptors == 0)  # idle flows expire
        first.sendto(b"three", ("127.0.0.1", vport))  # and a new one opens
        assert await asyncio.wait_for(loop.sock_recv(first, 100), 5) == b"rs:three"
        for sock in [first, *flood]:
            sock.close()
        await backend.close()
        echo.close()

    asyncio.run(scenario())


def test_a_scheduler_the_proxy_does_not_know_is_refused_before_anything_changes():
    async def scenario():
        backend = UserspaceBackend(ProxyLimits(max_descriptors=10))
        await backend.start()
        desired = Table.of([service(free_port(), [RealServer("127.0.0.2", 80)],
                                    scheduler="lblc")])
        with pytest.raises(BackendError, match="scheduler lblc needs the ipvs backend"):
            await apply(backend, desired)
        assert backend.runtimes == {}
        await backend.close()

    asyncio.run(scenario())


def test_the_budget_leaves_descriptors_for_the_checks():
    assert descriptor_budget(1024) == 1024 - FD_RESERVE
    assert descriptor_budget(1 << 20) == (1 << 20) - (1 << 17)  # an eighth when larger
    assert descriptor_budget(100) == 0
    assert ProxyLimits.from_system().max_descriptors > 0


def test_memory_backend_and_choice():
    async def scenario():
        backend = MemoryBackend()
        desired = Table.of([service(80, [RealServer("127.0.0.2", 80)])])
        await apply(backend, desired)
        await apply(backend, desired)  # nothing to do: no transaction
        assert len(backend.transactions) == 1
        backend.fail_next = "disk on fire"
        with pytest.raises(BackendError):
            await apply(backend, Table())
        assert await backend.read() == desired

    asyncio.run(scenario())
    from vigil.director.backends.nftables import NftablesBackend

    # The kernel path when it can run (root, nftables), else the proxy.
    expected = "nftables" if NftablesBackend.available() is None else "userspace"
    assert choose("auto").name in (expected, "ipvs")
    assert choose("memory").name == "memory"


def test_a_connect_the_real_server_never_answers_is_given_up_for_the_next_server():
    async def scenario():
        # A listener that never accepts, its queue full: the kernel drops further SYNs.
        black = socket.socket()
        black.bind(("127.0.0.2", 0))
        black.listen(0)
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(black.getsockname())
            fillers.append(filler)
        good, port = await named_server("rs1")
        vport = free_port()
        backend = UserspaceBackend(ProxyLimits(max_descriptors=100, sweep_every=0.05,
                                               connect_timeout=0.3))
        await backend.start()
        reals = [RealServer("127.0.0.2", black.getsockname()[1]), RealServer("127.0.0.2", port)]
        await apply(backend, Table.of([service(vport, reals)]))
        loop = asyncio.get_running_loop()
        started = loop.time()
        # round robin: one of the two goes to the silent server first, then to rs1
        assert [await ask(vport, "a"), await ask(vport, "b")] == ["rs1:a", "rs1:b"]
        assert loop.time() - started >= 0.3  # one waited for its connect to time out
        assert not backend.connecting
        await backend.close()
        good.close()
        black.close()
        for filler in fillers:
            filler.close()

    asyncio.run(scenario())
