"""What the demo says while a scene is quiet: which scene runs and for how long.

Most of a scene is waiting (deadtimes, syncs, boots). On a terminal one status
line is redrawn in place under the timeline and wiped before the timeline goes
on; into a pipe or a log, a plain line when nothing was printed for a while, so
a log shows the demo is alive without filling up. Pure but for the stream it
writes to; the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

#: without a terminal: a line after this long with nothing printed
QUIET_EVERY = 15.0
#: on a terminal: the status line is redrawn at most this often
REDRAW_EVERY = 1.0
#: wipes the current terminal line
CLEAR = "\r\x1b[K"


def status_line(index: int, count: int, title: str, elapsed: float, alongside: int) -> str:
    """`scene 2/4, the heartbeat pair: 23 s (2 more scenes running alongside)`."""
    line = f"scene {index}/{count}, {title}: {elapsed:.0f} s"
    if alongside:
        line += f" ({alongside} more scene{'s' if alongside > 1 else ''} running alongside)"
    return line


@dataclass
class Waiting:
    """The status line's state: what is on screen and when something was last printed."""

    out: TextIO
    is_tty: bool
    last_printed: float
    shown: bool = False
    last_drawn: float = float("-inf")

    def printed(self, text: str, now: float) -> None:
        """Timeline text goes out: the status line is wiped first (a terminal)."""
        if not text:
            return
        if self.shown:
            self.out.write(CLEAR)
            self.shown = False
        self.out.write(text)
        self.last_printed = now
        self.last_drawn = float("-inf")  # the line comes back under the new text at once

    def quiet(self, line: str, now: float) -> None:
        """Nothing new to print: say what runs (in place, or a plain line now and then)."""
        if self.is_tty:
            if now - self.last_drawn >= REDRAW_EVERY:
                self.out.write(CLEAR + line)
                self.shown, self.last_drawn = True, now
        elif now - self.last_printed >= QUIET_EVERY:
            self.out.write(f"  ... {line}\n")
            self.last_printed = now

    def done(self) -> None:
        if self.shown:
            self.out.write(CLEAR)
            self.shown = False
