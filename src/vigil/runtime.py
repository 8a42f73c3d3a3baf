"""What every vigil daemon does the same way: its pid file, detaching, signals.

The heartbeat, director and volume daemons each used to carry their own copy;
a pid file that one daemon read one way and another wrote another way is how a
`status` comes to lie. A pid file counts only while its process runs *and* is
the daemon (its command line names it): after a crash or a reboot the number
may belong to some other program, which must not block a start or be signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from vigil.errors import EnvironmentProblem, VigilError

#: the signals that ask every daemon to stop gracefully
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: how often a waiting command looks again
POLL = 0.05


def read_pid(path: Path) -> int | None:
    """The number in a pid file; None when there is no usable one.

    A file that cannot be read for lack of permission is not "no daemon":
    saying stopped there would invite a second start.
    """
    try:
        return int(path.read_text().split()[0])
    except PermissionError:
        raise EnvironmentProblem(f"cannot read the pid file {path}: permission denied "
                                 "(vigil's daemons run as root)") from None
    except (OSError, ValueError, IndexError):
        return None


def command_line(pid: int) -> list[str] | None:
    """A process's arguments; None when it is gone (or hidden from us)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [word.decode(errors="replace") for word in raw.split(b"\0")]


def process_runs(pid: int, words: Iterable[str]) -> bool:
    """The PID runs a program whose arguments contain each of `words` (an exited,
    unreaped process has none, so it does not count)."""
    argv = command_line(pid)
    if argv is None:
        return False
    return all(any(word in arg for arg in argv) for word in words)


class PidFile:
    """One daemon's pid file: who runs, refusing a second start, cleaning up."""

    def __init__(self, path: str | Path, words: Sequence[str] = ("vigil",),
                 name: str = "vigil"):
        self.path = Path(path)
        #: what the daemon's command line must contain to be it
        self.words = tuple(words)
        #: how messages name the daemon
        self.name = name

    def running_pid(self) -> int | None:
        """The daemon's PID when the file names a process that is the daemon."""
        pid = read_pid(self.path)
        if pid is None or not process_runs(pid, self.words):
            return None
        return pid

    def stale(self) -> bool:
        """A pid file is there, but its daemon is not (LSB status 1)."""
        return self.path.exists() and self.running_pid() is None

    def acquire(self) -> None:
        """Write this process's PID unless another process is the daemon already."""
        other = self.running_pid()
        if other is not None and other != os.getpid():
            raise EnvironmentProblem(f"{self.name} already runs (pid {other}, {self.path})")
        self.write()

    def write(self) -> None:
        """This process's PID, replaced atomically so a reader never sees half a number."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(f"{os.getpid()}\n")
            temporary.replace(self.path)
        except PermissionError:
            raise EnvironmentProblem(f"cannot write the pid file {self.path}: permission "
                                     "denied (vigil's daemons run as root)") from None

    def release(self) -> None:
        """Remove the file if it is still this process's (a successor may own it now)."""
        with contextlib.suppress(OSError, VigilError):
            if read_pid(self.path) == os.getpid():
                self.path.unlink()

    def wait_gone(self, pid: int, timeout: float, reaped: bool = False) -> bool:
        """Wait until the daemon `pid` has exited (see `wait_gone`)."""
        return wait_gone(pid, self.words, timeout, reaped)


def wait_gone(pid: int, words: Iterable[str], timeout: float, reaped: bool = False) -> bool:
    """Wait until `pid` no longer runs a program naming `words`; False when it still
    does at `timeout`.

    `reaped`: also until it has left the process table, so that `kill -0` fails
    once this returns (a detached daemon's reaper is init); without it an exited
    child of a caller that never reaps it counts as gone.
    """
    words = tuple(words)
    deadline = time.monotonic() + timeout
    while True:
        gone = not process_runs(pid, words)
        if gone and reaped:
            gone = not Path(f"/proc/{pid}").exists()
        if gone or time.monotonic() >= deadline:
            return gone
        time.sleep(POLL)


def on_signals(loop: asyncio.AbstractEventLoop, signums: Iterable[signal.Signals],
               handler: Callable[[int], object]) -> None:
    """Route signals into the loop; the handler gets the signal's number.

    Handlers run on the loop, between tasks, never inside another handler's code:
    they only hand a request to the daemon (set an event, queue a command).
    """
    for signum in signums:
        loop.add_signal_handler(signum, handler, signum)


def spawn_detached(argv: Sequence[str], output: Path,
                   append: bool = False) -> subprocess.Popen[bytes]:
    """Start a daemon process in its own session, its output in `output`.

    The caller waits for it to answer on its control socket (or to exit, then
    the output says why).
    """
    with open(output, "ab" if append else "wb") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, start_new_session=True, close_fds=True)


def detach(serve: Callable[[Callable[[], None]], int]) -> int:
    """Fork into the background and run `serve(ready)` there; return its PID once it
    has called `ready()`, or raise the error it failed with.

    The daemon is the child of a session leader that exits at once, so it can
    never acquire a controlling terminal; its standard files are /dev/null.
    Only the parent returns.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_end)
        message = b""
        while chunk := os.read(read_end, 4096):
            message += chunk
        os.close(read_end)
        os.waitpid(pid, 0)
        text = message.decode(errors="replace").strip()
        if text.startswith("ready pid "):
            return int(text.removeprefix("ready pid "))
        raise VigilError(text.removeprefix("error: ") or "the daemon exited during start-up")
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")

    def ready() -> None:
        os.write(write_end, f"ready pid {os.getpid()}\n".encode())
        os.close(write_end)

    try:
        code = serve(ready)
    except VigilError as exc:
        with contextlib.suppress(OSError):
            os.write(write_end, f"error: {exc}\n".encode())
        os._exit(exc.exit_code)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(write_end, f"error: internal error: {exc!r}\n".encode())
        os._exit(70)
    os._exit(code)


def event_loop_runner():
    """uvloop when it is installed (measured: the userspace proxy 1.4-1.7x faster, the
    volume's 4 KiB writes about 10%), else the standard loop; VIGIL_EVENT_LOOP=asyncio
    forces the standard one."""
    if os.environ.get("VIGIL_EVENT_LOOP") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return getattr(uvloop, "run", None) or _uvloop_run(uvloop.new_event_loop)
    return asyncio.run


def _uvloop_run(new_event_loop: Callable[[], asyncio.AbstractEventLoop]):
    """`uvloop.run` for uvloop < 0.18 (Debian 12's 0.17): what it does on Python 3.11."""

    def run(main):
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(main)

    return run
