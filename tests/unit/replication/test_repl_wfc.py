"""The boot-time wait for the peer: which timeout, when it ends and why (fake clock)."""

from __future__ import annotations

import pytest

from vigil.cli import volume_boot
from vigil.replication.config import Endpoint, VolumeConfig
from vigil.replication.metadata import MdFlag
from vigil.replication.states import NotConfigured
from vigil.replication.wfc import (
    EXIT_TIMED_OUT,
    ConnectWait,
    StartupTimeouts,
    WaitKind,
    kind_at_attach,
)
from vigil.testing import FakeClock


@pytest.mark.parametrize("flags, kind", [
    (MdFlag.CONSISTENT, WaitKind.DEFAULT),
    (MdFlag.CONSISTENT | MdFlag.CONNECTED, WaitKind.DEFAULT),
    # a primary that went down connected (both lost power together): the normal wait
    (MdFlag.CONSISTENT | MdFlag.PRIMARY | MdFlag.CONNECTED, WaitKind.DEFAULT),
    # a primary that had already lost its peer: a degraded cluster
    (MdFlag.CONSISTENT | MdFlag.PRIMARY, WaitKind.DEGRADED),
    (MdFlag.CONSISTENT | MdFlag.PRIMARY | MdFlag.PEER_OUTDATED, WaitKind.PEER_OUTDATED),
    (MdFlag.CONSISTENT | MdFlag.PEER_OUTDATED, WaitKind.PEER_OUTDATED),
])
def test_the_metadata_found_at_attach_picks_the_timeout(flags, kind):
    found, why = kind_at_attach(flags)
    assert found is kind and why


@pytest.mark.parametrize("wfc, degr, outdated, expected", [
    # (wfc, degr, outdated) -> (default, degraded, peer outdated)
    (0, 60, 0, (0, 60, 60)),        # DRBD's defaults: forever, 60 s, 60 s
    (300, 120, 60, (300, 120, 60)),
    (30, 120, 60, (30, 30, 30)),    # a special wait is never longer than wfc-timeout
    (30, 0, 0, (30, 30, 30)),       # nor forever when wfc-timeout is not
    (0, 0, 0, (0, 0, 0)),
    (0, 10, 20, (0, 10, 10)),
])
def test_timeouts_follow_drbdsetups_clamping(wfc, degr, outdated, expected):
    limits = StartupTimeouts(wfc, degr, outdated)
    assert tuple(limits.timeout(k) for k in WaitKind) == expected


def test_connected_ends_the_wait_at_once():
    clock = FakeClock()
    wait = ConnectWait(WaitKind.DEFAULT, StartupTimeouts(wfc=0), clock.now())
    assert not wait.observe(clock.now(), "Connecting").done
    clock.advance(3.5)
    verdict = wait.observe(clock.now(), "Connected")
    assert verdict.done and verdict.exit_code == 0
    assert verdict.reason == "connected after 3.5 s"


def test_wfc_timeout_zero_waits_forever():
    clock = FakeClock()
    wait = ConnectWait(WaitKind.DEFAULT, StartupTimeouts(wfc=0), clock.now())
    assert wait.deadline is None and "forever" in wait.describe()
    clock.advance(10 * 365 * 86400)
    assert not wait.observe(clock.now(), "Connecting").done


@pytest.mark.parametrize("kind, limit", [(WaitKind.DEFAULT, 30.0), (WaitKind.DEGRADED, 10.0),
                                         (WaitKind.PEER_OUTDATED, 4.0)])
def test_each_kind_runs_out_at_its_own_timeout(kind, limit):
    clock = FakeClock()
    wait = ConnectWait(kind, StartupTimeouts(wfc=30, degraded=10, outdated=4), clock.now())
    clock.advance(limit - 0.01)
    assert not wait.observe(clock.now(), "Connecting").done
    assert wait.next_check(clock.now(), 1.0) == pytest.approx(1000.0 + limit)
    clock.advance(0.01)
    verdict = wait.observe(clock.now(), "Connecting")
    assert verdict.done and verdict.exit_code == EXIT_TIMED_OUT
    assert kind.value in verdict.reason and f"{limit:g} s" in verdict.reason


def test_standalone_ends_the_wait_unless_wait_after_sb():
    clock = FakeClock()
    stop = ConnectWait(WaitKind.DEFAULT, StartupTimeouts(wfc=0), clock.now())
    verdict = stop.observe(clock.now(), "StandAlone", "split brain detected")
    assert verdict.done and verdict.exit_code == 0
    assert "split brain detected" in verdict.reason and "wait-after-sb" in verdict.reason
    keep = ConnectWait(WaitKind.DEFAULT, StartupTimeouts(wfc=0, wait_after_sb=True), 0.0)
    assert not keep.observe(5.0, "StandAlone", "split brain detected").done


# -- the CLI's loop, driven by the fake clock ---------------------------------------------------
def _cfg(name: str, become: str | None = None) -> VolumeConfig:
    local = Endpoint("server5.example.com", "10.0.0.5", 7789, "/dev/drbd1", "/x")
    peer = Endpoint("server6.example.com", "10.0.0.6", 7789, "/dev/drbd1", "/x")
    return VolumeConfig(name, local, peer, become_primary_on=become)


class Script:
    """Each resource's connection state over (fake) time."""

    def __init__(self, clock: FakeClock, timeline: dict[str, list[tuple[float, str]]],
                 kinds: dict[str, WaitKind] | None = None):
        self.clock, self.timeline, self.kinds = clock, timeline, kinds or {}

    def observe(self, cfg: VolumeConfig):
        if cfg.name not in self.timeline:
            raise NotConfigured("not up (no daemon answers)")
        state = "Connecting"
        for when, new in self.timeline[cfg.name]:
            if self.clock.now() >= when:
                state = new
        kind = self.kinds.get(cfg.name, WaitKind.DEFAULT)
        return state, "", kind, "because"


def _run(clock, script, cfgs, limits):
    said: list[tuple[float, str]] = []
    code = volume_boot.wait_connect(cfgs, lambda cfg: limits[cfg.name], script.observe,
                                    now=clock.now, sleep=clock.advance,
                                    say=lambda text: said.append((clock.now(), text)))
    return code, said


def test_all_resources_are_waited_for_at_once_each_with_its_timeout():
    clock = FakeClock(0.0)
    script = Script(clock, {"a": [(2.0, "Connected")], "b": []},
                    kinds={"b": WaitKind.DEGRADED})
    limits = {"a": StartupTimeouts(wfc=0), "b": StartupTimeouts(wfc=0, degraded=15)}
    code, said = _run(clock, script, [_cfg("a"), _cfg("b")], limits)
    assert code == EXIT_TIMED_OUT
    texts = dict((text.split(":")[0] + ("!" if "after" in text else ""), when)
                 for when, text in said)
    assert texts["a!"] == pytest.approx(2.0, abs=0.11)
    assert texts["b!"] == pytest.approx(15.0, abs=1e-6)  # not 2 + 15: they ran side by side
    first = next(text for _, text in said if text.startswith("b:"))
    assert "up to 15 s (degr-wfc-timeout): because; peer server6.example.com" in first
    assert said[-1][1] == "b: no connection after 15 s (degr-wfc-timeout); going on " \
        "without the peer"


def test_a_resource_that_is_not_up_is_said_and_not_waited_for():
    clock = FakeClock(0.0)
    script = Script(clock, {"a": [(1.0, "Connected")]})
    code, said = _run(clock, script, [_cfg("a"), _cfg("down")],
                      {"a": StartupTimeouts(), "down": StartupTimeouts()})
    assert code == 10
    assert ("down: not up (no daemon answers); not waiting") in [text for _, text in said]
    assert any(text.startswith("a: connected after 1.") for _, text in said)


def test_a_long_wait_says_it_is_still_waiting():
    clock = FakeClock(0.0)
    script = Script(clock, {"a": [(25.0, "Connected")]})
    _, said = _run(clock, script, [_cfg("a")], {"a": StartupTimeouts(wfc=0)})
    still = [when for when, text in said if text.startswith("a: still waiting")]
    assert len(still) == 2 and still[0] == pytest.approx(10.0, abs=0.11)


@pytest.mark.parametrize("become, here", [(None, False), ("server5.example.com", True),
                                          ("server5", True), ("both", True),
                                          ("server6.example.com", False)])
def test_become_primary_on_names_this_node(become, here):
    assert volume_boot.becomes_primary_here(_cfg("a", become)) is here
