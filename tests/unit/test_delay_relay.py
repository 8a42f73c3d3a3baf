"""The lab's delay relay: every frame out `delay` seconds after it came, in order, bounded."""

import pytest

from vigil.lab import LabError
from vigil.lab.delay import Detour, relay_argv
from vigil.testing import delay_relay
from vigil.testing.delay_relay import Relay


def test_frames_leave_in_arrival_order_once_their_delay_has_passed():
    relay = Relay(0.5)
    relay.take(10.0, "b", b"one")
    relay.take(10.1, "a", b"two")
    assert abs(relay.wait(10.2) - 0.3) < 1e-9
    assert relay.due(10.49) == []
    assert relay.due(10.5) == [("b", b"one")]
    assert relay.due(11.0) == [("a", b"two")]
    assert relay.wait(11.0) is None


def test_what_is_held_goes_at_once_when_the_delay_ends():
    relay = Relay(5.0)
    for n in range(3):
        relay.take(float(n), "a", bytes([n]))
    assert relay.everything() == [("a", b"\0"), ("a", b"\1"), ("a", b"\2")]
    assert relay.due(100.0) == []


def test_a_full_queue_drops_what_comes_next(monkeypatch):
    monkeypatch.setattr(delay_relay, "MAX_HELD", 2)
    relay = Relay(1.0)
    for n in range(4):
        relay.take(0.0, "a", bytes([n]))
    assert relay.dropped == 2 and len(relay.everything()) == 2


def test_the_relay_is_run_between_the_port_and_the_pair_with_a_bounded_delay():
    detour = Detour("lan-p1", "br-lan", "dly0r", "dly0b")
    assert relay_argv("py", detour, 0.25)[-3:] == ["lan-p1", "dly0r", "0.25"]
    assert Detour.from_json(detour.to_json()) == detour
    for wrong in (0.0, -1.0, 61.0):
        with pytest.raises(LabError, match="at most 60 s"):
            relay_argv("py", detour, wrong)
