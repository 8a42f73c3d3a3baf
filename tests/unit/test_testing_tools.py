"""The test tools themselves: fake clock, simulator, lossy network, wait_until."""

import time

import pytest

from vigil.testing import FakeClock, LossyNetwork, Simulator, WaitTimeout, wait_until


def test_fake_clock_moves_only_forward():
    clock = FakeClock(start=5.0)
    assert clock.now() == 5.0
    clock.advance(0.25)
    assert clock.now() == 5.25
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(1.0)


def test_simulator_runs_callbacks_in_time_order():
    sim = Simulator(FakeClock(0.0))
    seen = []
    sim.call_at(2.0, lambda: seen.append(("b", sim.now())))
    sim.call_at(1.0, lambda: seen.append(("a", sim.now())))
    sim.call_at(1.0, lambda: seen.append(("a2", sim.now())))
    sim.run_until(1.5)
    assert seen == [("a", 1.0), ("a2", 1.0)]
    assert sim.now() == 1.5
    sim.run_for(1.0)
    assert seen[-1] == ("b", 2.0)


def _network(seed: int, **kwargs) -> tuple[Simulator, LossyNetwork, dict[str, list]]:
    sim = Simulator(FakeClock(0.0))
    net = LossyNetwork(sim, seed=seed, **kwargs)
    inbox: dict[str, list] = {"a": [], "b": [], "c": []}
    for node in inbox:
        net.attach(node, lambda sender, payload, node=node: inbox[node].append((sender, payload)))
    return sim, net, inbox


def test_broadcast_reaches_everyone_but_the_sender():
    sim, net, inbox = _network(1)
    net.send("a", b"hello")
    sim.run_for(1.0)
    assert inbox["a"] == []
    assert inbox["b"] == [("a", b"hello")]
    assert inbox["c"] == [("a", b"hello")]


def test_partition_blocks_exactly_the_pair_and_heals():
    sim, net, inbox = _network(1)
    net.partition("a", "b")
    net.send("a", b"1")
    sim.run_for(1.0)
    assert inbox["b"] == [] and inbox["c"] == [("a", b"1")]
    net.heal("a", "b")
    net.send("a", b"2", to="b")
    sim.run_for(1.0)
    assert inbox["b"] == [("a", b"2")]


def test_partition_stops_packets_already_in_flight():
    sim, net, inbox = _network(1, min_delay=0.5, max_delay=0.5)
    net.send("a", b"x", to="b")
    sim.run_for(0.1)
    net.partition("a", "b")
    sim.run_for(1.0)
    assert inbox["b"] == []


def test_loss_and_duplication_follow_the_seed():
    def run(seed):
        sim, net, inbox = _network(seed, loss=0.3, duplicate=0.2)
        for i in range(200):
            net.send("a", bytes([i]), to="b")
        sim.run_for(1.0)
        return [p for _, p in inbox["b"]], dict(net.counters)

    first, counters = run(7)
    assert run(7) == (first, counters)  # same seed, same schedule
    assert run(8)[0] != first
    assert 90 < len(first) < 200  # some lost, some duplicated
    assert counters["lost"] > 0 and counters["duplicated"] > 0


def test_down_node_neither_sends_nor_receives():
    sim, net, inbox = _network(1)
    net.set_down("b")
    net.send("a", b"x")
    net.send("b", b"y")
    sim.run_for(1.0)
    assert inbox["b"] == [] and inbox["c"] == [("a", b"x")]


def test_wait_until_returns_the_value():
    start = time.monotonic()
    values = iter([0, None, "", 42])
    assert wait_until(lambda: next(values), timeout=2) == 42
    assert time.monotonic() - start < 1


def test_wait_until_fails_clearly_with_last_error():
    def broken():
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(WaitTimeout) as failure:
        wait_until(broken, timeout=0.05, message="the VIP to answer")
    text = str(failure.value)
    assert "the VIP to answer" in text and "nobody home" in text
