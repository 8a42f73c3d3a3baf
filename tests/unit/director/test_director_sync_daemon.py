"""IPVS's connection sync daemon: settings checked, the kernel's attributes both ways,
and the director running master while active and backup on standby."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from vigil.config import extension
from vigil.director import daemon
from vigil.director.backends.ipvs import _command_message
from vigil.director.backends.memory import MemoryBackend
from vigil.lvs.syncdaemon import SyncDaemon, SyncDaemonError, SyncState, decode, parse_setting
from vigil.lvs.table import ServiceKey

#: what Debian's 6.1 kernel answered to GET_DAEMON for `backup, lo, syncid 5` (its
#: defaults filled in: maxlen for lo's MTU, port 8848, ttl 1, group 224.0.0.81)
KERNEL_ANSWER = bytes.fromhex(
    "0800010002000000" "070002006c6f0000" "0800030005000000" "06000400e3ff0000"
    "0600070090220000" "0500080001000000" "08000500e0000051")


def test_the_kernels_answer_decodes_to_the_daemon_it_runs():
    assert decode(KERNEL_ANSWER) == SyncDaemon(SyncState.BACKUP, "lo", 5, 65507, "224.0.0.81",
                                               8848, 1)
    assert decode(KERNEL_ANSWER).describe() == (
        "backup sync daemon (mcast=lo, syncid=5, maxlen=65507, group=224.0.0.81, "
        "port=8848, ttl=1)")


@pytest.mark.parametrize("daemon", [
    SyncDaemon(SyncState.MASTER, "eth1", 5),
    SyncDaemon(SyncState.BACKUP, "bond0.12", 255, 1472, "239.1.2.3", 9000, 4),
    SyncDaemon(SyncState.MASTER, "eth0", 0, group="ff02::8000:81"),
])
def test_what_vigil_sends_the_kernel_decodes_back_the_same(daemon):
    nested = _command_message().daemon()
    nested["attrs"] = daemon.attributes()
    nested.encode()
    payload = bytes(nested.data[4:nested["header"]["length"]])
    assert decode(payload) == daemon


@pytest.mark.parametrize(("fields", "problem"), [
    ({"interface": "eth0; reboot"}, "bad multicast interface"),
    ({"interface": "a" * 16}, "bad multicast interface"),
    ({"syncid": 256}, "syncid must be"),
    ({"syncid": -1}, "syncid must be"),
    ({"maxlen": 0}, "sync-maxlen must be"),
    ({"maxlen": 65508}, "sync-maxlen must be"),
    ({"port": 70000}, "mcast-port must be"),
    ({"ttl": 0}, "mcast-ttl must be"),
    ({"group": "198.51.100.1"}, "not a multicast address"),
    ({"group": "no-address"}, "bad mcast-group"),
])
def test_settings_the_kernel_would_refuse_are_refused_first(fields, problem):
    settings = {"state": SyncState.MASTER, "interface": "eth0", **fields}
    with pytest.raises(SyncDaemonError, match=problem):
        SyncDaemon(**settings)


@pytest.mark.parametrize("data", [
    None, [], {"state": "primary", "interface": "eth0"}, {"state": "master"},
    {"state": ["master"], "interface": "eth0"}, {"state": {}, "interface": "eth0"},
    {"state": "master", "interface": 5}, {"state": "master", "interface": "eth0", "syncid": "5"},
    {"state": "master", "interface": "eth0", "syncid": True},
    {"state": "master", "interface": "eth0", "group": 224},
])
def test_a_control_request_with_a_damaged_daemon_is_refused(data):
    with pytest.raises(SyncDaemonError):
        SyncDaemon.from_json(data)


@pytest.mark.parametrize("data", [
    b"", KERNEL_ANSWER[:6], KERNEL_ANSWER[8:], b"\x03\x00\x01\x00" + KERNEL_ANSWER,
    b"\xff\x00\x01\x00" + KERNEL_ANSWER, KERNEL_ANSWER.replace(b"lo\0", b"l;\0"),
    bytes.fromhex("0800010007000000") + KERNEL_ANSWER[8:], b"\0" * 5000,
])
def test_damaged_kernel_attributes_are_a_value_error(data):
    with pytest.raises(ValueError):
        decode(data)


CONFIG = """\
checktimeout=1
checkinterval=1
virtual=127.0.0.1:8080
\treal=127.0.0.2:{port} masq
\tscheduler=rr
\tchecktype=connect
"""


def test_the_sync_daemon_is_backup_on_standby_master_when_active_and_gone_at_stop(run_dir):
    async def scenario():
        server = socket.socket()
        server.bind(("127.0.0.2", 0))
        server.listen(8)
        cf = run_dir / "ldirectord.cf"
        cf.write_text(CONFIG.format(port=server.getsockname()[1]))
        backend = MemoryBackend()
        sync = SyncDaemon(SyncState.MASTER, "eth1", 7)
        director = daemon.Director(cf, backend, standby=True, sync=sync)
        task = asyncio.create_task(director.run())
        key = ServiceKey.tcp("127.0.0.1", 8080)
        async with asyncio.timeout(10):
            while backend.table.service(key) is None:
                await asyncio.sleep(0.02)
        assert list(backend.daemons.values()) == [SyncDaemon(SyncState.BACKUP, "eth1", 7)]
        await director._answer({"command": "activate"})
        assert list(backend.daemons.values()) == [SyncDaemon(SyncState.MASTER, "eth1", 7)]
        await director._answer({"command": "deactivate"})
        assert list(backend.daemons) == [SyncState.BACKUP]
        listed = await director._answer({"command": "sync-daemons"})
        assert listed["daemons"] == [SyncDaemon(SyncState.BACKUP, "eth1", 7).to_json()]
        director._stop.set()
        await task
        assert backend.daemons == {}
        server.close()

    asyncio.run(scenario())


def test_the_control_socket_starts_and_stops_a_daemon_and_refuses_damaged_requests(run_dir):
    async def scenario():
        backend = MemoryBackend()
        director = daemon.Director(None, backend)
        master = SyncDaemon(SyncState.MASTER, "eth0", 3).to_json()
        assert await director._answer({"command": "start-sync-daemon", "daemon": master})
        assert list(backend.daemons) == [SyncState.MASTER]
        for bad in ({"command": "start-sync-daemon", "daemon": {**master, "syncid": 999}},
                    {"command": "stop-sync-daemon", "state": "primary"},
                    {"command": "stop-sync-daemon", "state": ["master"]}):
            with pytest.raises(daemon.VigilError):
                await director._answer(bad)
        await director._answer({"command": "stop-sync-daemon", "state": "master"})
        assert backend.daemons == {}
        assert json.dumps(await director._answer({"command": "sync-daemons"}))

    asyncio.run(scenario())


@pytest.mark.parametrize(("text", "daemon"), [
    ("eth1", SyncDaemon(SyncState.MASTER, "eth1")),
    ("eth1 id 9", SyncDaemon(SyncState.MASTER, "eth1", 9)),
    ("bond0  id 5 maxlen 1472 port 9000 ttl 2 group 239.1.2.3",
     SyncDaemon(SyncState.MASTER, "bond0", 5, 1472, "239.1.2.3", 9000, 2)),
])
def test_lvs_sync_daemon_takes_keepaliveds_words(text, daemon):
    assert parse_setting(text) == daemon


@pytest.mark.parametrize(("text", "problem"), [
    ("", "needs the multicast interface"),
    ("eth1 id", "'id' needs a value"),
    ("eth1 VI_1 id 5", "unknown word 'VI_1'"),
    ("eth1 id 5 id 6", "id given twice"),
    ("eth1 id five", "takes a whole number"),
    ("eth1 id 9999999999", "takes a whole number"),
    ("eth1 ttl 300", "mcast-ttl must be"),
])
def test_lvs_sync_daemon_with_wrong_words_is_refused(text, problem):
    with pytest.raises(SyncDaemonError, match=problem):
        parse_setting(text)


def test_vigil_cf_names_the_line_of_a_bad_lvs_sync_daemon():
    parsed = extension.analyze("lvs_sync_daemon eth1 id 5\n", "/etc/ha.d/vigil.cf")
    assert parsed.ok and parsed.model.lvs_sync_daemon == "eth1 id 5"
    assert extension.parse(extension.render(parsed.model)) == parsed.model
    assert extension.parse("lvs_sync_daemon off\n").lvs_sync_daemon is None
    [error] = extension.analyze("\nlvs_sync_daemon eth1 id 300\n", "/etc/ha.d/vigil.cf").errors
    assert (error.location.line, error.message) == (
        2, "lvs_sync_daemon: syncid must be a whole number from 0 to 255, not 300")


class NoSyncBackend(MemoryBackend):
    name = "nosync"
    has_sync_daemon = False


def test_a_backend_without_a_sync_daemon_ignores_the_setting_and_says_so(run_dir, caplog):
    async def scenario():
        backend = NoSyncBackend()
        director = daemon.Director(None, backend, sync=SyncDaemon(SyncState.MASTER, "eth1"))
        task = asyncio.create_task(director.run())
        async with asyncio.timeout(10):
            while not director.paths.socket.exists():
                await asyncio.sleep(0.02)
        director._stop.set()
        await task
        return backend

    backend = asyncio.run(scenario())
    assert backend.daemons == {}  # nothing asked of it
    assert "director.sync_daemon_ignored" in caplog.text and "nosync" in caplog.text
