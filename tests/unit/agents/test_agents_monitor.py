"""Monitoring: restart in place up to K times within a window, then fail the group."""

import asyncio

from vigil.agents.base import Agent, AgentResult, OcfStatus
from vigil.agents.group import Group
from vigil.agents.monitor import AdminMarks, GroupMonitor, RestartPolicy, Verdict
from vigil.agents.options import AgentOptions
from vigil.testing import FakeClock

DEAD = AgentResult(OcfStatus.NOT_RUNNING, "gone")
OK = AgentResult(OcfStatus.SUCCESS)


def test_restarts_up_to_the_limit_then_fails_the_group():
    policy = RestartPolicy(limit=3, window=300)
    verdicts = [policy.observe("mysqld", DEAD, t).verdict for t in (0, 10, 20, 30)]
    assert verdicts == [Verdict.RESTART] * 3 + [Verdict.FAIL_GROUP]


def test_failures_older_than_the_window_are_forgotten():
    policy = RestartPolicy(limit=2, window=60)
    assert policy.observe("db", DEAD, 0).verdict is Verdict.RESTART
    assert policy.observe("db", DEAD, 30).verdict is Verdict.RESTART
    decision = policy.observe("db", DEAD, 61)  # the first one left the window
    assert decision.verdict is Verdict.RESTART and "restart 2 of 2" in decision.reason
    assert policy.observe("db", DEAD, 62).verdict is Verdict.FAIL_GROUP


def test_healthy_and_on_purpose_are_not_failures():
    policy = RestartPolicy(limit=0, window=60)
    assert policy.observe("db", OK, 0).verdict is Verdict.HEALTHY
    stopped = policy.observe("db", DEAD, 1, stopped_on_purpose=True)
    assert stopped.verdict is Verdict.IGNORED and "on purpose" in stopped.reason
    assert policy.observe("db", DEAD, 2).verdict is Verdict.FAIL_GROUP  # limit 0: no restart


def test_resources_are_counted_separately():
    policy = RestartPolicy(limit=1, window=60)
    assert policy.observe("a", DEAD, 0).verdict is Verdict.RESTART
    assert policy.observe("b", DEAD, 1).verdict is Verdict.RESTART
    assert policy.observe("a", DEAD, 2).verdict is Verdict.FAIL_GROUP


class Service(Agent):
    def __init__(self, name, can_start=True):
        super().__init__(name)
        self.running = False
        self.can_start = can_start
        self.starts = 0

    async def start(self, timeout):
        self.starts += 1
        self.running = self.can_start
        return OK if self.can_start else AgentResult(OcfStatus.ERR_GENERIC, "no")

    async def stop(self, timeout):
        self.running = False
        return OK

    async def status(self, timeout):
        return OK if self.running else DEAD


def _monitor(agents, clock, marks=None, **options):
    group = Group("g", agents, AgentOptions(**options))
    return group, GroupMonitor(group, clock=clock, marks=marks)


def test_a_dead_service_is_restarted_in_place():
    clock = FakeClock()
    db = Service("db")
    group, monitor = _monitor([db], clock, restart_limit=2)
    asyncio.run(group.start())
    db.running = False
    decision = asyncio.run(monitor.check("db"))
    assert decision.verdict is Verdict.RESTART and db.running and db.starts == 2


def test_a_service_that_cannot_restart_fails_the_group_at_the_limit():
    clock = FakeClock()
    db = Service("db")
    group, monitor = _monitor([db], clock, restart_limit=2)
    asyncio.run(group.start())
    db.can_start, db.running = False, False
    # 1st check: failure 1, restart fails = failure 2 (still within the limit of 2)
    assert asyncio.run(monitor.check("db")).verdict is Verdict.RESTART
    clock.advance(5)
    assert asyncio.run(monitor.check("db")).verdict is Verdict.FAIL_GROUP


def test_a_resource_stopped_by_an_administrator_is_left_alone(tmp_path):
    clock = FakeClock()
    db = Service("db")
    marks = AdminMarks(tmp_path)
    _, monitor = _monitor([db], clock, marks=marks, restart_limit=0)
    marks.mark("db")
    assert asyncio.run(monitor.check("db")).verdict is Verdict.IGNORED
    assert db.starts == 0
    marks.clear("db")
    assert asyncio.run(monitor.check("db")).verdict is Verdict.FAIL_GROUP


def test_the_loop_returns_when_the_group_has_failed():
    db = Service("db", can_start=False)
    _, monitor = _monitor([db], FakeClock(), restart_limit=1, monitor_interval=0.01)
    decision = asyncio.run(asyncio.wait_for(monitor.run(), 5))
    assert decision.verdict is Verdict.FAIL_GROUP and decision.resource == "db"


def test_vigil_cf_sections_reach_each_resource_monitor_and_stop():
    from vigil.agents.options import options_from_extension
    from vigil.config.extension import parse

    config = parse("restart_limit 5\n"
                   "agent db\n    restart_limit 0\n"
                   "resource web::site\n    on_monitor_failure ignore\n    stop_retries 1\n"
                   "agent cache\n    monitor off\n"
                   "resource queue\n    on_monitor_failure failover\n")
    options = options_from_extension(config)
    db, web, cache, queue = (Service("db"), Service("web"), Service("cache"),
                             Service("queue"))
    web.args = ("site",)
    group = Group("g", [db, web, cache, queue], options)
    monitor = GroupMonitor(group, clock=FakeClock())
    asyncio.run(group.start())
    assert [options.monitored(a) for a in (db, web, cache, queue)] == [True, True, False, True]
    assert options.stop_retries_for(web) == 1 and options.stop_retries_for(db) == 10
    web.running = False  # ignore: logged, not restarted
    decision = asyncio.run(monitor.check("web::site"))
    assert decision.verdict is Verdict.IGNORED and web.starts == 1
    db.running = False  # the agent section's limit 0, not the global 5: fails at once
    assert asyncio.run(monitor.check("db")).verdict is Verdict.FAIL_GROUP
    queue.running = False  # failover: no restart in place
    decision = asyncio.run(monitor.check("queue"))
    assert decision.verdict is Verdict.FAIL_GROUP and queue.starts == 1


def test_a_group_with_monitor_off_everywhere_is_never_checked():
    db = Service("db")
    db.running = False  # would fail at once if checked
    _, monitor = _monitor([db], FakeClock(), monitor=False, monitor_interval=0.01)

    async def watch():
        task = asyncio.get_running_loop().create_task(monitor.run())
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()

    asyncio.run(watch())
    assert db.starts == 0
