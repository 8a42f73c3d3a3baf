"""The heartbeat thread's timer survives whatever the engine raises."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from vigil.ha.beat import HeartbeatThread


class BrokenEngine:
    config = SimpleNamespace(timings=SimpleNamespace(keepalive=0.1))

    def tick(self, now: float):
        raise KeyError("server5.example.com")

    def receive(self, datagram: bytes, link: str, now: float):
        raise ValueError("bad packet")

    def next_deadline(self, now: float) -> float:
        return now + 0.1


def test_a_tick_that_raises_is_logged_and_the_timer_armed_again(caplog):
    loop = asyncio.new_event_loop()
    try:
        beat = HeartbeatThread(BrokenEngine(), settings=None, on_actions=print,  # type: ignore
                               on_exit=print)
        beat.loop = loop
        beat._tick()
        assert beat._timer is not None and beat._timer_at > loop.time()
        beat._tick()  # again: still armed, no spin
        assert beat._timer is not None
        beat._received(b"x", "eth0")  # the packet is dropped, the timer stays
        assert beat._timer is not None
        assert "engine.fault" in caplog.text and "KeyError" in caplog.text
    finally:
        loop.close()
