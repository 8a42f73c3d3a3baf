"""IPv6: a virtual6/real6 config and the userspace proxy on ::1."""

import asyncio
import socket

from vigil.config import ldirectord as cf
from vigil.config.resolve import SystemResolver
from vigil.director.adapter import from_ldirectord
from vigil.director.backends.userspace import UserspaceBackend
from vigil.lvs.reconcile import reconcile
from vigil.lvs.table import RealServer, ServiceKey, Table, VirtualService


def parse(text, path="ldirectord.cf"):
    return from_ldirectord(cf.parse(text, path), SystemResolver())


def test_virtual6_sections():
    config = parse("virtual6=[2001:db8::100]:80\n\treal6=[2001:db8::1]:80 gate\n"
                   "\tfallback6=[::1]:80 gate\n\tchecktype=connect\n")
    (service,) = config.services
    assert service.key == ServiceKey.tcp("2001:db8::100", 80) and service.key.family == 6
    assert service.reals[0].real.address == "2001:db8::1"
    assert service.fallback.address == "::1"
    assert str(service.key) == "TCP  [2001:db8::100]:80"


def test_userspace_proxy_over_ipv6_loopback():
    async def scenario():
        async def handler(reader, writer):
            writer.write(b"six:" + await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handler, "::1", 0)
        real_port = server.sockets[0].getsockname()[1]
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            vport = probe.getsockname()[1]
        backend = UserspaceBackend()
        await backend.start()
        desired = Table.of([VirtualService(ServiceKey.tcp("::1", vport), scheduler="rr",
                                           reals=(RealServer("::1", real_port),))])
        await backend.apply(reconcile(desired, await backend.read()), desired)
        reader, writer = await asyncio.open_connection("::1", vport)
        writer.write(b"hello\n")
        answer = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        await backend.close()
        server.close()
        return answer

    assert asyncio.run(scenario()) == b"six:hello\n"
