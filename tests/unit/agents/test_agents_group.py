"""Groups: order, rollback of a failed start, and a failed stop that blocks release."""

import asyncio

from vigil.agents.base import Agent, AgentResult, OcfStatus
from vigil.agents.group import Group, Holding
from vigil.agents.options import AgentOptions, StopFailurePolicy

OK = AgentResult(OcfStatus.SUCCESS)


class Recorded(Agent):
    """An in-memory resource: running or not, with scripted failures; logs every call."""

    def __init__(self, name, journal, fail_start=False, fail_stop=0, stuck=False):
        super().__init__(name)
        self.journal = journal
        self.running = False
        self.fail_start = fail_start
        self.fail_stop = fail_stop  # how many stops fail before one succeeds (-1: all)
        self.stuck = stuck  # a failed stop leaves it running (status says so)

    async def start(self, timeout):
        self.journal.append(("start", self.name))
        if self.fail_start:
            return AgentResult(OcfStatus.ERR_GENERIC, "cannot")
        self.running = True
        return OK

    async def stop(self, timeout):
        self.journal.append(("stop", self.name))
        if self.fail_stop:
            self.fail_stop -= 1 if self.fail_stop > 0 else 0
            if not self.stuck:
                self.running = False
            return AgentResult(OcfStatus.ERR_GENERIC, "busy")
        self.running = False
        return OK

    async def status(self, timeout):
        return OK if self.running else AgentResult(OcfStatus.NOT_RUNNING)


async def no_sleep(_seconds):
    return None


def group_of(journal, *agents, **options):
    return Group("g", list(agents), AgentOptions(stop_retry_delay=0, **options), sleep=no_sleep)


def test_start_left_to_right_stop_right_to_left():
    journal = []
    g = group_of(journal, Recorded("ip", journal), Recorded("fs", journal),
                 Recorded("db", journal))
    started = asyncio.run(g.start())
    assert started.ok
    stopped = asyncio.run(g.stop())
    assert stopped.ok and stopped.released
    assert journal == [("start", "ip"), ("start", "fs"), ("start", "db"),
                       ("stop", "db"), ("stop", "fs"), ("stop", "ip")]


def test_resources_already_held_are_not_started_again():
    journal = []
    ip = Recorded("ip", journal)
    ip.running = True
    g = group_of(journal, ip, Recorded("db", journal))
    assert asyncio.run(g.start()).ok
    assert journal == [("start", "db")]


def test_failed_start_rolls_back_and_reports_the_group_failed():
    journal = []
    agents = [Recorded("ip", journal), Recorded("fs", journal), Recorded("db", journal,
                                                                          fail_start=True)]
    g = group_of(journal, *agents)
    result = asyncio.run(g.start())
    assert not result.ok and result.released and not result.blocked
    assert "db failed to start" in result.reason
    assert not any(a.running for a in agents)
    assert journal == [("start", "ip"), ("start", "fs"), ("start", "db"),
                       ("stop", "db"), ("stop", "fs"), ("stop", "ip")]


def test_failed_stop_is_retried_like_heartbeat():
    journal = []
    db = Recorded("db", journal, fail_stop=3)
    db.running = True
    g = group_of(journal, db, stop_retries=10)
    result = asyncio.run(g.stop())
    assert result.released
    assert journal.count(("stop", "db")) == 4


def test_a_stop_that_keeps_failing_blocks_release_and_keeps_dependencies():
    journal = []
    ip, fs, db = Recorded("ip", journal), Recorded("fs", journal, fail_stop=-1, stuck=True), \
        Recorded("db", journal)
    for agent in (ip, fs, db):
        agent.running = True
    g = group_of(journal, ip, fs, db, stop_retries=2)
    result = asyncio.run(g.stop())
    assert not result.ok and not result.released and result.blocked
    assert result.policy is StopFailurePolicy.BLOCK
    assert "NOT released" in result.reason
    assert ip.running and fs.running and not db.running  # stopping stopped at fs
    assert journal.count(("stop", "fs")) == 3 and ("stop", "ip") not in journal
    assert asyncio.run(g.status()).holding is Holding.SOME


def test_failed_stop_with_status_stopped_is_only_a_warning():
    journal = []
    fs = Recorded("fs", journal, fail_stop=-1, stuck=False)  # says error, but it is gone
    fs.running = True
    result = asyncio.run(group_of(journal, fs, stop_retries=1).stop())
    assert result.released and not result.blocked


def test_reboot_policy_is_reported_to_the_caller():
    journal = []
    fs = Recorded("fs", journal, fail_stop=-1, stuck=True)
    fs.running = True
    g = group_of(journal, fs, stop_retries=0, on_stop_failure=StopFailurePolicy.REBOOT)
    result = asyncio.run(g.stop())
    assert result.blocked and result.policy is StopFailurePolicy.REBOOT


def test_rollback_that_cannot_stop_blocks_too():
    journal = []
    fs = Recorded("fs", journal, fail_stop=-1, stuck=True)
    db = Recorded("db", journal, fail_start=True)
    result = asyncio.run(group_of(journal, fs, db, stop_retries=0).start())
    assert not result.ok and result.blocked and not result.released


def test_restart_in_place_stops_and_starts_the_resources_to_the_right():
    journal = []
    agents = [Recorded(n, journal) for n in ("ip", "fs", "db")]
    g = group_of(journal, *agents)
    asyncio.run(g.start())
    journal.clear()
    agents[1].running = False  # the file system died
    result = asyncio.run(g.restart_from("fs"))
    assert result.ok
    assert journal == [("stop", "db"), ("stop", "fs"), ("start", "fs"), ("start", "db")]


def test_group_status_is_heartbeats_none_some_all():
    journal = []
    a, b = Recorded("a", journal), Recorded("b", journal)
    g = group_of(journal, a, b)
    assert asyncio.run(g.status()).holding is Holding.NONE
    a.running = True
    assert asyncio.run(g.status()).holding is Holding.SOME
    b.running = True
    assert asyncio.run(g.status()).holding is Holding.ALL
