"""Progress of a resync: a bar redrawn on a terminal, a line per 10 % or 10 s otherwise."""

from __future__ import annotations

import io

from vigil.cli.progress import SyncProgress, bar, describe
from vigil.testing import FakeClock


def sync(percent: float, total: int = 64 << 20, rate: float = 12.5 * (1 << 20),
         eta: float | None = 3.2) -> dict:
    return {"percent": percent, "total_bytes": total,
            "left_bytes": int(total * (100 - percent) / 100), "rate": rate, "eta": eta}


def test_a_line_says_how_far_how_fast_and_how_long():
    assert describe("r0", sync(45.0)) == \
        "r0: 45.0% (28.8 MiB of 64.0 MiB) 12.5 MiB/s, 3.2 s left"
    assert describe("r0", sync(0.0, eta=None)).endswith("time left unknown")
    assert bar(50, 10) == "[#####.....]" and bar(140, 4) == "[####]" and bar(-3, 2) == "[..]"


def test_without_a_terminal_a_line_every_ten_percent_or_ten_seconds():
    out, clock = io.StringIO(), FakeClock(0)
    progress = SyncProgress(out, tty=False, clock=clock.now)
    for percent in (1.0, 4.0, 9.0, 11.5, 12.0):
        progress.update("r0", sync(percent))
        clock.advance(0.1)
    clock.advance(10)
    progress.update("r0", sync(13.0))
    progress.update("r0", None)  # connected, no resync running: nothing to say
    progress.finish("r0", "in sync")
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ["1.0%", "11.5%", "13.0%"]
    assert lines[-1] == "r0: in sync"
    assert "\r" not in out.getvalue()


def test_on_a_terminal_the_bar_is_redrawn_in_place():
    out = io.StringIO()
    progress = SyncProgress(out, tty=True)
    progress.update("r0", sync(10.0))
    progress.update("r0", sync(20.0))
    progress.finish("r0", "in sync")
    text = out.getvalue()
    assert text.count("\r[") == 2 and "\n" not in text.rsplit("\r", 1)[0]
    assert text.endswith("r0: in sync\n")


def test_nothing_is_printed_when_no_resync_was_seen():
    out = io.StringIO()
    progress = SyncProgress(out, tty=False)
    progress.finish("r0", "in sync")
    assert out.getvalue() == ""
