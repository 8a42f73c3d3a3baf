"""The check engine: pure timing with a fake clock, and the real loop on loopback."""

import asyncio
import socket

from vigil.director.checkers.base import CheckResult
from vigil.director.engine import CheckEngine, CheckSchedule, phase, targets_for
from vigil.director.settings import CheckSpec, RealSpec, ServiceConfig
from vigil.lvs.table import RealServer, ServiceKey, VirtualService
from vigil.testing import FakeClock


def test_schedule_spreads_checks_then_keeps_their_rate():
    clock = FakeClock(0)
    schedule = CheckSchedule()
    schedule.add("a", 1.0, 0.0)
    schedule.add("b", 1.0, 0.0)
    assert schedule.take_due(clock.now()) == ["a", "b"]  # first checks at once
    assert schedule.next_deadline() is None  # both running
    clock.advance(0.2)
    second = schedule.finished("a", 0.0, clock.now())
    # Spread over the interval, and never more than one interval after the first.
    assert second == max(phase("a"), 0.2) and second < 1.0
    clock.set(second)
    assert schedule.take_due(clock.now()) == ["a"]
    clock.advance(0.3)
    assert schedule.finished("a", 0.0, clock.now()) == second + 1.0  # then every interval
    clock.advance(5.0)  # b hung past its interval: runs again as soon as it ends
    assert schedule.finished("b", 0.0, clock.now()) == clock.now()
    assert "b" in schedule.take_due(clock.now())


def test_spread_checks_cover_the_interval_evenly():
    schedule = CheckSchedule()
    names = [f"real{i}" for i in range(1000)]
    for name in names:
        schedule.add(name, 1.0, 0.0)
    schedule.take_due(0.0)
    dues = sorted(schedule.finished(n, 0.0, 0.0) for n in names)
    per_tenth = [sum(1 for d in dues if i / 10 <= d < (i + 1) / 10) for i in range(10)]
    assert min(per_tenth) > 60 and max(per_tenth) < 140


def test_schedule_limit_removal_and_run_now():
    schedule = CheckSchedule()
    for name in "abc":
        schedule.add(name, 5.0, 10.0)
    assert schedule.take_due(9.9) == []
    assert schedule.take_due(10.0, limit=2) == ["a", "b"]
    schedule.remove("c")
    assert schedule.take_due(11.0) == []
    schedule.finished("a", 10.0, 10.5)
    schedule.run_now("a", 11.0)
    assert schedule.next_deadline() == 11.0
    assert schedule.take_due(11.0) == ["a"]


def service(port, reals, checktype="connect", **check):
    return ServiceConfig(
        VirtualService(ServiceKey.tcp("127.0.0.1", port)),
        reals=tuple(RealSpec(RealServer("127.0.0.1", p)) for p in reals),
        check=CheckSpec(checktype=checktype, checktimeout=0.5, negotiatetimeout=0.5, **check),
        checkinterval=0.2,
    )


def test_same_check_in_two_services_runs_once_for_both():
    a = service(80, [8001, 8002])
    b = service(81, [8001])
    targets = targets_for([a, b])
    assert len(targets) == 2  # 127.0.0.1:8001 is checked once for both services
    shared = next(t for t in targets if t.real.real.port == 8001)
    assert shared.members == ((a.key, a.reals[0].key), (b.key, b.reals[0].key))
    assert targets_for([service(82, [1], checktype="on")]) == []
    # External checks are told the virtual service: one check per service.
    ext_a = service(80, [8001], checktype="external")
    ext_b = service(81, [8001], checktype="external")
    assert len(targets_for([ext_a, ext_b])) == 2


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_engine_reports_up_down_and_a_hung_server_by_timeout():
    async def scenario():
        good = listener()
        closed = listener()
        closed_port = closed.getsockname()[1]
        closed.close()
        hung = await asyncio.start_server(lambda r, w: asyncio.sleep(3600), "127.0.0.1", 0)
        hung_port = hung.sockets[0].getsockname()[1]
        results = {}

        def on_result(target, result: CheckResult):
            results.setdefault(target.real.real.port, []).append(result)

        engine = CheckEngine(on_result)
        engine.set_targets(targets_for([
            service(80, [good.getsockname()[1], closed_port]),
            service(81, [hung_port], checktype="negotiate", service="simpletcp",
                    request="/hello", receive="hi"),
        ]))
        runner = asyncio.create_task(engine.run())
        loop = asyncio.get_running_loop()
        started = loop.time()
        while len(results.get(hung_port, [])) < 1 and loop.time() - started < 5:
            await asyncio.sleep(0.02)
        while len(results.get(good.getsockname()[1], [])) < 3 and loop.time() - started < 5:
            await asyncio.sleep(0.02)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        hung.close()
        good.close()
        return results, good.getsockname

    results, _ = asyncio.run(scenario())
    by_port = {port: [r.ok for r in rs] for port, rs in results.items()}
    ups = [rs for rs in by_port.values() if all(rs)]
    downs = [rs for port, rs in results.items() if not any(r.ok for r in rs)]
    assert len(ups) == 1 and len(ups[0]) >= 3  # checked again every interval
    assert len(downs) == 2
    messages = {r.message for rs in results.values() for r in rs if not r.ok}
    assert "connection refused" in messages
    assert "timed out after 0.5 s" in messages
