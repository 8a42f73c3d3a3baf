"""Progress of long work on a terminal: a bar redrawn in place, or plain lines.

`vigil volume wait-sync` (and the boot-time waits) can take minutes on a large
volume. On a terminal a bar with the rate and the time left is redrawn in
place; into a pipe or a log, a plain line every 10 % or every 10 s, so logs stay
readable and a stalled sync still shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

BAR_WIDTH = 30
#: without a terminal: a line when the percentage moved this much, or this often
LINE_STEP_PERCENT = 10.0
LINE_EVERY = 10.0


def human_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def describe(name: str, sync: dict[str, Any]) -> str:
    """`r0: 45.0% (28.8 MiB of 64.0 MiB) 12.3 MiB/s, 3.2 s left` from a status's `sync`."""
    total = float(sync.get("total_bytes", 0))
    done = total - float(sync.get("left_bytes", 0))
    eta = sync.get("eta")
    left = "time left unknown" if eta is None else f"{float(eta):.1f} s left"
    return (f"{name}: {float(sync.get('percent', 0)):.1f}% ({human_bytes(done)} of "
            f"{human_bytes(total)}) {human_bytes(float(sync.get('rate', 0)))}/s, {left}")


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    filled = max(0, min(width, round(width * percent / 100.0)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class SyncProgress:
    """Shows a resync as it goes; `update` with each status, `finish` at the end."""

    def __init__(self, out: TextIO, tty: bool, clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.tty = tty
        self.clock = clock
        self._last_percent: float | None = None
        self._last_line = -1e9
        self._drawn = False

    def update(self, name: str, sync: dict[str, Any] | None) -> None:
        if not sync:
            return
        percent = float(sync.get("percent", 0))
        text = describe(name, sync)
        if self.tty:
            self.out.write(f"\r{bar(percent)} {text}\x1b[K")
            self.out.flush()
            self._drawn = True
            return
        now = self.clock()
        moved = self._last_percent is None or percent - self._last_percent >= LINE_STEP_PERCENT
        if moved or now - self._last_line >= LINE_EVERY:
            print(text, file=self.out, flush=True)
            self._last_percent, self._last_line = percent, now

    def finish(self, name: str, message: str) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
        if self._drawn or self._last_percent is not None:
            print(f"{name}: {message}", file=self.out, flush=True)
