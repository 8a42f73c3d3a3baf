"""Fake-clock tests: reconnect timing, liveness, resync rate control, split-brain policies."""

from __future__ import annotations

import pytest

from vigil.replication.rate import STEP, AdaptiveRate, RateSettings, ResyncPacer
from vigil.replication.split_brain import Outcome, Policies, SbSide, resolve
from vigil.replication.timers import ConnectTimer, LinkSettings, Liveness, PingTimer
from vigil.testing import FakeClock


def test_reconnect_retries_every_connect_int():
    clock = FakeClock()
    timer = ConnectTimer(LinkSettings(connect_int=10), clock.now())
    assert timer.due(clock.now())
    first_retry = timer.failed(clock.now())
    assert first_retry == pytest.approx(clock.now() + 1.0)  # a quick first retry
    clock.advance(0.99)
    assert not timer.due(clock.now())
    clock.advance(0.01)
    assert timer.due(clock.now())
    assert timer.failed(clock.now()) == pytest.approx(clock.now() + 10)
    clock.advance(9.9)
    assert not timer.due(clock.now())
    assert timer.lost(clock.now()) == clock.now()  # a broken link retries at once


def test_ping_then_dead():
    clock = FakeClock()
    ping = PingTimer(LinkSettings(ping_int=2, ping_timeout=0.5), clock.now())
    assert ping.check(clock.now()) == (Liveness.OK, clock.now() + 2)
    clock.advance(2)
    action, deadline = ping.check(clock.now())
    assert action is Liveness.SEND_PING and deadline == clock.now() + 0.5
    clock.advance(0.4)
    assert ping.check(clock.now())[0] is Liveness.OK
    clock.advance(0.1)
    assert ping.check(clock.now())[0] is Liveness.DEAD
    ping.heard(clock.now())
    assert ping.check(clock.now())[0] is Liveness.OK


def test_stalled_write_expels_the_peer():
    clock = FakeClock()
    ping = PingTimer(LinkSettings(timeout=1.0, ko_count=3), clock.now())
    started = clock.now()
    clock.advance(2.9)
    assert ping.check(clock.now(), oldest_unacked=started)[0] is not Liveness.STALLED
    clock.advance(0.1)
    assert ping.check(clock.now(), oldest_unacked=started)[0] is Liveness.STALLED


def test_fixed_rate_holds_the_rate():
    clock = FakeClock()
    rate = 10 << 20
    pacer = ResyncPacer(RateSettings(resync_rate=rate, c_plan_ahead=0, c_min_rate=0),
                        clock.now())
    sent = 0
    for _ in range(100):  # 10 s in 0.1 s steps
        clock.advance(STEP)
        amount = pacer.allowance(clock.now(), 0, app_io=False)
        pacer.consume(amount)
        sent += amount
    assert sent == pytest.approx(rate * 10, rel=0.02)


def test_fixed_rate_yields_to_application_io():
    clock = FakeClock()
    pacer = ResyncPacer(RateSettings(resync_rate=100 << 20, c_plan_ahead=0,
                                     c_min_rate=1 << 20), clock.now())
    clock.advance(STEP)
    assert pacer.allowance(clock.now(), 0, app_io=True) == int((1 << 20) * STEP)


def simulate(settings: RateSettings, link_rate: float, seconds: float, app_io=False):
    """A link that moves `link_rate` bytes/s; returns the throughput reached and max in flight."""
    controller = AdaptiveRate(settings, 0.0)
    in_flight = 0.0
    acked_total = 0.0
    peak = 0.0
    acked = 0.0
    steps = int(seconds / STEP)
    for step in range(steps):
        if step == steps // 2:
            acked_total = 0.0  # measure the steady state: the second half
        request = controller.step(int(acked), int(in_flight), app_io)
        in_flight += request
        acked = min(in_flight, link_rate * STEP)
        in_flight -= acked
        acked_total += acked
        peak = max(peak, in_flight)
    return acked_total / (seconds / 2), peak


def test_adaptive_rate_fills_the_link_with_bounded_queue():
    link = 50 << 20
    settings = RateSettings(c_plan_ahead=2.0, c_fill_target=0, c_delay_target=0.1,
                            c_max_rate=400 << 20, c_min_rate=0)
    throughput, peak = simulate(settings, link, 30)
    assert throughput > 0.8 * link  # it finds the link's speed
    assert peak < 2 * link  # without piling up more than ~2 s of data


def test_adaptive_rate_respects_max_and_min():
    settings = RateSettings(c_plan_ahead=1.0, c_fill_target=8 << 20, c_max_rate=10 << 20,
                            c_min_rate=1 << 20)
    throughput, _ = simulate(settings, 100 << 20, 10)
    assert throughput <= (10 << 20) * 1.01
    throttled, _ = simulate(settings, 100 << 20, 10, app_io=True)
    assert throttled <= (1 << 20) * 1.01


def sb(name, primary=False, changes=0, since=0.0, discard=False):
    return SbSide(name, primary, changes, since, discard)


@pytest.mark.parametrize(
    ("policies", "me", "peer", "expected"),
    [
        (Policies(), sb("a", changes=1), sb("b", changes=2), Outcome.DISCONNECT),
        (Policies("discard-zero-changes"), sb("a"), sb("b", changes=5), Outcome.DISCARD_MINE),
        (Policies("discard-zero-changes"), sb("a", changes=5), sb("b"), Outcome.DISCARD_PEER),
        (Policies("discard-zero-changes"), sb("a", changes=1), sb("b", changes=5),
         Outcome.DISCONNECT),
        (Policies("discard-least-changes"), sb("a", changes=1), sb("b", changes=5),
         Outcome.DISCARD_MINE),
        (Policies("discard-younger-primary"), sb("a", since=200), sb("b", since=100),
         Outcome.DISCARD_MINE),
        (Policies("discard-older-primary"), sb("a", since=200), sb("b", since=100),
         Outcome.DISCARD_PEER),
        (Policies("discard-node-b"), sb("a"), sb("b"), Outcome.DISCARD_PEER),
        (Policies(after_sb_1pri="discard-secondary"), sb("a", primary=True, changes=1),
         sb("b", changes=9), Outcome.DISCARD_PEER),
        (Policies("discard-least-changes", "consensus"), sb("a", primary=True, changes=9),
         sb("b", changes=1), Outcome.DISCARD_PEER),
        (Policies("discard-least-changes", "consensus"), sb("a", primary=True, changes=1),
         sb("b", changes=9), Outcome.DISCONNECT),
        (Policies(after_sb_2pri="disconnect"), sb("a", True, 1), sb("b", True, 1),
         Outcome.DISCONNECT),
        (Policies("discard-least-changes", after_sb_2pri="violently-as0p"),
         sb("a", True, 1), sb("b", True, 3), Outcome.DISCARD_MINE),
        # Manual recovery beats every policy.
        (Policies(), sb("a", discard=True), sb("b"), Outcome.DISCARD_MINE),
        (Policies(), sb("a"), sb("b", discard=True), Outcome.DISCARD_PEER),
    ],
)
def test_split_brain_policies(policies, me, peer, expected):
    verdict = resolve(policies, me, peer, i_win_ties=True)
    assert verdict.outcome is expected, verdict.reason
    # The peer reaches the mirror verdict.
    mirror = resolve(policies, peer, me, i_win_ties=False)
    flip = {Outcome.DISCARD_MINE: Outcome.DISCARD_PEER, Outcome.DISCARD_PEER:
            Outcome.DISCARD_MINE, Outcome.DISCONNECT: Outcome.DISCONNECT}
    assert mirror.outcome is flip[expected], mirror.reason


def test_call_pri_lost_after_sb_marks_the_losing_primary():
    policies = Policies("discard-least-changes", "call-pri-lost-after-sb")
    verdict = resolve(policies, sb("a", True, 1), sb("b", False, 9), i_win_ties=True)
    assert verdict.outcome is Outcome.DISCARD_MINE and verdict.call_pri_lost


def test_a_probe_asks_at_once_and_a_silent_peer_is_dead_after_ping_timeout():
    s = LinkSettings(ping_int=10, ping_timeout=0.5)
    ping = PingTimer(s, 0.0)
    assert not ping.probe(0.3)  # it spoke 0.3 s ago: alive, nothing to ask
    assert ping.probe(2.0) and ping.probing  # idle 2 s: ask now, not at ping-int
    assert not ping.probe(2.1)  # already asked
    assert ping.check(2.4) == (Liveness.OK, 2.5)
    assert ping.check(2.5)[0] is Liveness.DEAD


def test_a_probe_answered_is_over():
    ping = PingTimer(LinkSettings(ping_int=10, ping_timeout=0.5), 0.0)
    assert ping.probe(3.0)
    ping.heard(3.1)
    assert not ping.probing
    assert ping.check(3.2) == (Liveness.OK, 13.1)
