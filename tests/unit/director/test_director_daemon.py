"""The director's loop on loopback with the in-memory backend: checks drive the
table, autoreload applies only the difference, maintenance drains, cleanstop empties."""

import asyncio
import socket

import pytest

from vigil.director import daemon
from vigil.director.backends.memory import MemoryBackend
from vigil.director.codec import operation_to_json
from vigil.lvs.operations import AddReal, AddService, DeleteReal
from vigil.lvs.table import RealKey, RealServer, ServiceKey, VirtualService

CONFIG = """\
checktimeout=1
checkinterval=1
autoreload=yes
quiescent=yes
maintenancedir={maint}
virtual=127.0.0.1:{vport}
\treal=127.0.0.2:{p1} masq
\treal=127.0.0.2:{p2} masq
\tfallback=127.0.0.3:{vport} masq
\tscheduler=rr
\tchecktype=connect
\tfallbackcommand="{sorry}"
"""


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(daemon, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(daemon, "POLL_INTERVAL", 0.1)
    (tmp_path / "run").mkdir()
    return tmp_path


def listener(port=0):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.2", port))
    sock.listen(64)
    return sock


async def until(condition, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def test_checks_drive_the_table_reload_and_maintenance(run_dir):
    async def scenario():
        one, two = listener(), listener()
        p1, p2 = one.getsockname()[1], two.getsockname()[1]
        maint = run_dir / "maint"
        maint.mkdir()
        cf = run_dir / "ldirectord.cf"
        sorry = run_dir / "sorry.sh"
        sorry.write_text(f"#!/bin/sh\necho \"$@\" >> {run_dir}/sorry.log\n")
        sorry.chmod(0o755)

        def config(**extra):
            return CONFIG.format(maint=maint, vport=8080, p1=p1, p2=p2, sorry=sorry, **extra)

        cf.write_text(config())
        backend = MemoryBackend()
        director = daemon.Director(cf, backend)
        task = asyncio.create_task(director.run())
        key = ServiceKey.tcp("127.0.0.1", 8080)

        def weights():
            service = backend.table.service(key)
            return {} if service is None else {r.port: r.weight for r in service.reals}

        await until(lambda: weights() == {p1: 1, p2: 1})
        # Before the first checks passed the servers were in at weight 0, never 1.
        first = backend.transactions[0]
        assert all(op.real.weight == 0 for op in first if isinstance(op, AddReal))

        one.close()  # rs1 dies: quiescent, not removed
        await until(lambda: weights() == {p1: 0, p2: 1})
        one = listener(p1)
        await until(lambda: weights() == {p1: 1, p2: 1})

        (maint / f"127.0.0.2:{p2}").write_text("")
        await until(lambda: weights() == {p1: 1, p2: 0})
        (maint / f"127.0.0.2:{p2}").unlink()
        await until(lambda: weights() == {p1: 1, p2: 1})

        # Autoreload: a third server appears (at weight 0 until checked), the others
        # keep their state: no edit touches them.
        three = listener()
        p3 = three.getsockname()[1]
        before = len(backend.transactions)
        cf.write_text(config() + f"\treal=127.0.0.2:{p3} masq 2\n")
        await until(lambda: weights().get(p3) == 2)
        changed = [op for tx in backend.transactions[before:] for op in tx]
        assert {op.real.port for op in changed} == {p3}

        # A bad edit is refused and the running config stays.
        cf.write_text("virtual=127.0.0.1:8080\n\treal=nonsense\n")
        await asyncio.sleep(0.5)
        assert weights() == {p1: 1, p2: 1, p3: 2}

        # Both down: the fallback server takes over.
        cf.write_text(config())
        one.close()
        two.close()
        await until(lambda: weights() == {p1: 0, p2: 0, 8080: 1})
        log = run_dir / "sorry.log"
        await until(lambda: log.exists() and log.read_text() == "start 127.0.0.1:8080 tcp\n")

        # Removing a managed real server by hand is allowed; it stays out.
        await director.edit([DeleteReal(key, RealKey("127.0.0.2", p1))])
        await until(lambda: p1 not in weights())

        # Hand-kept services live beside the managed ones.
        other = ServiceKey.tcp("127.0.0.1", 9090)
        await director.edit([AddService(VirtualService(other, scheduler="rr")),
                             AddReal(other, RealServer("127.0.0.9", 9090))])
        assert backend.table.service(other) is not None
        assert director.paths.manual.exists()
        operation_to_json(DeleteReal(key, RealKey("127.0.0.2", p1)))

        director._stop.set()
        await task
        # cleanstop=yes: the managed service is gone, the hand-kept one stays.
        assert backend.table.service(key) is None
        assert backend.table.service(other) is not None
        three.close()

    asyncio.run(scenario())


def test_an_ldirectord_logfile_without_a_slash_is_a_syslog_facility():
    from vigil.director.daemon import SYSLOG_PREFIX, split_log_target
    assert split_log_target(f"{SYSLOG_PREFIX}local0") == (None, "local0")
    assert split_log_target("/var/log/ldirectord.log") == ("/var/log/ldirectord.log", None)
    assert split_log_target(None) == (None, None) and split_log_target("") == (None, None)


def test_the_uvloop_runner_without_uvloop_run(monkeypatch):
    """uvloop < 0.18 (Debian 12's 0.17) has no uvloop.run: its loop factory runs the daemon."""
    import sys
    import types

    made = []

    def new_event_loop():
        made.append(asyncio.new_event_loop())
        return made[-1]

    monkeypatch.delenv("VIGIL_EVENT_LOOP", raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", types.SimpleNamespace(new_event_loop=new_event_loop))

    async def main():
        return asyncio.get_running_loop()

    assert daemon.event_loop_runner()(main()) is made[0]
    assert made[0].is_closed()
