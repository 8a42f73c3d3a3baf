"""`vigil volume adjust`: what a changed resource file means for the running volume."""

from __future__ import annotations

import dataclasses

from vigil.replication.adjust import plan
from vigil.replication.config import Buffers, Endpoint, Protocol, VolumeConfig
from vigil.replication.timers import LinkSettings

RUNNING = VolumeConfig(
    name="r0",
    local=Endpoint("server5", "198.51.100.5", 7789, "/dev/drbd1", "/var/lib/r0.img"),
    peer=Endpoint("server6", "198.51.100.6", 7789, "/dev/drbd1", "/var/lib/r0.img"),
    shared_secret="s3cret", handlers={"fence-peer": "/sbin/fence-peer"}, source="a.res:1")


def test_the_same_file_is_no_change_wherever_it_was_read():
    assert plan(RUNNING, dataclasses.replace(RUNNING, source="b.res:9", warnings=("w",))).empty


def test_handlers_fencing_and_timers_apply_at_once():
    wanted = dataclasses.replace(RUNNING, fencing="resource-only", handlers={},
                                 link=LinkSettings(ping_int=2))
    changes = plan(RUNNING, wanted)
    assert not changes.reconnect and not changes.restart
    assert [c.split(":")[0] for c in changes.live] == ["link", "fencing", "handlers"]
    assert "fencing: 'dont-care' -> 'resource-only'" in changes.live


def test_what_the_handshake_negotiates_takes_a_reconnect_and_secrets_are_not_shown():
    wanted = dataclasses.replace(RUNNING, protocol=Protocol.A, shared_secret="other")
    changes = plan(RUNNING, wanted)
    assert changes.reconnect == ("protocol: 'C' -> 'A'",
                                 "shared-secret changed")
    assert "other" not in str(changes) and "s3cret" not in str(changes)


def test_the_device_and_the_addresses_need_down_and_up():
    wanted = dataclasses.replace(
        RUNNING, al_extents=7,
        local=dataclasses.replace(RUNNING.local, disk="/dev/sdb1", port=7790),
        peer=dataclasses.replace(RUNNING.peer, address="198.51.100.7"))
    changes = plan(RUNNING, wanted)
    assert changes.restart[:2] == ("local.port: 7789 -> 7790",
                                   "local.disk: '/var/lib/r0.img' -> '/dev/sdb1'")
    assert any(c.startswith("peer: ") for c in changes.restart)
    assert "al_extents: 1237 -> 7" in changes.restart


def test_socket_buffers_take_a_reconnect():
    """They are set when a connection is made: adjust reconnects for them."""
    wanted = dataclasses.replace(RUNNING, buffers=Buffers(sndbuf=4 << 20, max_buffers=8000))
    changes = plan(RUNNING, wanted)
    assert not changes.live and not changes.restart
    assert [c.split(":")[0] for c in changes.reconnect] == ["buffers"]
