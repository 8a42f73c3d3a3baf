"""The IPVS backend's translation to and from netlink attributes, and its undo on failure
(the kernel side runs in the QEMU guest: tests/lab/guest/test_guest_ipvs.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from vigil.director.backends.base import BackendError
from vigil.director.backends.ipvs import (
    F_ONEPACKET,
    F_PERSISTENT,
    F_SCHED2,
    FWD_LOCAL,
    FWD_MASQ,
    FWD_ROUTE,
    IpvsBackend,
    real_attrs,
    real_from_attrs,
    service_attrs,
    service_from_attrs,
)
from vigil.lvs.reconcile import reconcile
from vigil.lvs.table import Forward, RealServer, ServiceKey, Table, VirtualService

SERVICES = [
    VirtualService(ServiceKey.tcp("198.51.100.100", 80), "rr"),
    VirtualService(ServiceKey.udp("198.51.100.100", 53), "sh", persistent=300,
                   netmask="255.255.255.0", sched_flags=("sh-port",), ops=True),
    VirtualService(ServiceKey.tcp("2001:db8::100", 443), "mh", persistent=60, netmask="64",
                   sched_flags=("mh-fallback", "mh-port")),
    VirtualService(ServiceKey.fwm(7, 6), "wlc"),
]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.key.label)
def test_services_round_trip_through_the_attributes(service):
    attrs = service_attrs(service)
    listed = {k: v for k, v in attrs.items() if k != "flags"}
    listed["flags"] = attrs["flags"]
    assert service_from_attrs(listed) == service


def test_attributes_are_what_ipvsadm_sends():
    udp = service_attrs(SERVICES[1])
    assert udp["protocol"] == socket.IPPROTO_UDP and udp["timeout"] == 300
    assert udp["flags"]["flags"] == F_PERSISTENT | F_ONEPACKET | F_SCHED2
    assert udp["netmask"] == "255.255.255.0"
    v6 = service_attrs(SERVICES[2])
    assert v6["af"] == socket.AF_INET6 and v6["netmask"] == "0.0.0.64"  # a prefix length
    assert real_attrs(RealServer("198.51.100.1", 80, 3, Forward.MASQ), 4)["fwd_method"] == \
        FWD_MASQ
    gate = real_attrs(RealServer("198.51.100.1", 80), 4)
    assert gate["fwd_method"] == FWD_ROUTE and gate["weight"] == 1


def test_a_local_destination_reads_back_as_it_was_given():
    # The kernel turns a real server on the director itself into "Local" forwarding.
    attrs = {"addr": "127.0.0.1", "port": 80, "fwd_method": FWD_LOCAL, "weight": 1}
    assert real_from_attrs(attrs).forward is Forward.GATE
    assert real_from_attrs(attrs, Forward.MASQ).forward is Forward.MASQ


class FakeIpvs:
    """Records requests; fails the n-th one (an IPVS socket is only in the guest)."""

    def __init__(self, fail_at: int | None = None):
        self.requests: list[tuple[str, str]] = []
        self.fail_at = fail_at

    def _request(self, what: str, command: str) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        if self.fail_at is not None and len(self.requests) == self.fail_at:
            self.fail_at = None
            raise NetlinkError(17, "File exists")
        self.requests.append((what, command))

    def service(self, command, service=None):
        self._request("service", command)

    def dest(self, command, service, dest=None):
        self._request("dest", command)

    def close(self):
        pass


def test_a_failed_operation_undoes_the_ones_before_it():
    service = VirtualService(ServiceKey.tcp("198.51.100.100", 80), "rr", reals=(
        RealServer("198.51.100.1", 80), RealServer("198.51.100.2", 80)))
    desired = Table.of([service])

    async def scenario():
        fake = FakeIpvs(fail_at=2)  # add-service, add-real ok; the second add-real fails
        backend = IpvsBackend(opener=lambda: fake)
        backend._ipvs = fake
        with pytest.raises(BackendError, match="File exists"):
            await backend.apply(reconcile(desired, Table()), desired)
        assert fake.requests == [("service", "add"), ("dest", "add"),
                                 ("dest", "del"), ("service", "del")]
        assert await backend.read() == Table()  # nothing of it stays
        await backend.apply(reconcile(desired, Table()), desired)
        assert await backend.read() == desired

    asyncio.run(scenario())


def test_the_kernel_s_connection_table_reads_as_ipvsadm_lists_it():
    from vigil.director.backends.ipvs import parse_connections

    def v4(address: str) -> int:
        return int.from_bytes(socket.inet_aton(address), "big")

    def v6(address: str) -> str:  # the kernel's %pI6: every group, four digits
        return socket.inet_pton(socket.AF_INET6, address).hex(":", 2)

    # the kernel's own formats (net/netfilter/ipvs/ip_vs_conn.c, ip_vs_conn_seq_show)
    text = ("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
            + "%-3s %08X %04X %08X %04X %08X %04X %-11s %7u\n" % (  # noqa: UP031 - as printk
                "TCP", v4("203.0.113.10"), 51230, v4("198.51.100.100"), 80,
                v4("198.51.100.1"), 8080, "ESTABLISHED", 899)
            + "%-3s %s %04X %s %04X %s %04X %-11s %7u\n" % (  # noqa: UP031 - as printk
                "UDP", v6("2001:db8::a"), 5353, v6("2001:db8::100"), 53, v6("2001:db8::1"), 53,
                "UDP", 42)
            + "TCP 00000000 garbage\n")
    assert [(c.protocol, c.expire, c.state, c.source, c.virtual, c.destination)
            for c in parse_connections(text)] == [
        ("TCP", 899.0, "ESTABLISHED", ("203.0.113.10", 51230), ("198.51.100.100", 80),
         ("198.51.100.1", 8080)),
        ("UDP", 42.0, "UDP", ("2001:db8::a", 5353), ("2001:db8::100", 53),
         ("2001:db8::1", 53))]
