"""Logging for the daemons: `event.name key=value` lines that never block the loop.

Records go through a queue to a listener thread (`QueueHandler`), so a slow
disk or syslog never delays a heartbeat. State changes are one clear line each.

Where they go follows heartbeat's ha.cf: `logfacility` sends them to syslog
(journald reads /dev/log too), `logfile` gets all but debug, `debugfile` gets
everything; with none of the three a daemon logs to syslog (facility daemon,
as heartbeat's logd does), so a detached daemon never logs nowhere.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSLOG_ADDRESS = "/dev/log"
#: heartbeat's logd logs with this facility when ha.cf names none
DEFAULT_FACILITY = "daemon"

_listener: logging.handlers.QueueListener | None = None
#: handlers whose level follows the debug setting (not logfile: heartbeat's has no debug)
_leveled: list[logging.Handler] = []
_debugfile_set = False


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="'):
        return '"' + text.replace('"', '\\"') + '"'
    return text


def format_event(name: str, **fields: Any) -> str:
    """`peer.dead node=server5 silent=30.01s`: the event first, then its facts."""
    return " ".join([name, *(f"{k}={_quote(v)}" for k, v in fields.items())])


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, format_event(name, **fields))


@dataclass(frozen=True)
class LogPlan:
    """Where a daemon's records go."""

    stream: bool = True
    logfile: str | None = None
    debugfile: str | None = None
    facility: str | None = None


def plan_logging(*, foreground: bool, logfile: str | None, debugfile: str | None,
                 logfacility: str | None) -> LogPlan:
    """heartbeat's rules: a facility (unless "none") means syslog; nothing set, a detached
    daemon logs to syslog with the daemon facility (in the foreground, under systemd or a
    terminal, stderr is the log); the terminal too when nothing else gets the records."""
    facility = logfacility if logfacility not in (None, "none") else None
    if logfacility is None and not logfile and not debugfile and not foreground:
        facility = DEFAULT_FACILITY
    stream = foreground or not (facility or logfile or debugfile)
    return LogPlan(stream, logfile, debugfile, facility)


def setup_logging(logfile: str | Path | None = None, debug: bool = False,
                  stream: bool = True, *, debugfile: str | Path | None = None,
                  facility: str | None = None, ident: str = "vigil",
                  syslog_address: str = SYSLOG_ADDRESS,
                  fallback_file: str | Path | None = None) -> list[str]:
    """Send vigil's log records through a queue to stderr, files and syslog.

    When syslog cannot be reached and no file is configured, the records go to
    `fallback_file` (a detached daemon's stderr is /dev/null). Returns the targets
    that could not be opened; the first record logged says so too."""
    global _listener
    if _listener is not None:
        _listener.stop()
    handlers: list[logging.Handler] = []
    problems: list[str] = []
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    global _debugfile_set
    _debugfile_set = bool(debugfile)
    _leveled.clear()
    level = logging.DEBUG if debug else logging.INFO
    if stream:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setLevel(level)
        handlers.append(stream_handler)
        _leveled.append(stream_handler)
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(logfile)
        file_handler.setLevel(logging.INFO)  # heartbeat's logfile: no debug messages
        handlers.append(file_handler)
    if debugfile:
        Path(debugfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(debugfile))
    for handler in handlers:
        handler.setFormatter(formatter)
    if facility:
        try:
            _probe_syslog(syslog_address)
            syslog = logging.handlers.SysLogHandler(
                address=syslog_address,
                facility=logging.handlers.SysLogHandler.facility_names[facility])
        except (OSError, KeyError) as exc:
            problems.append(f"syslog ({syslog_address}, facility {facility}): "
                            f"{getattr(exc, 'strerror', None) or exc}")
            if not (logfile or debugfile):  # never nowhere
                if fallback_file is not None:
                    Path(fallback_file).parent.mkdir(parents=True, exist_ok=True)
                    fallback: logging.Handler = logging.FileHandler(fallback_file)
                    problems[-1] += f"; logging to {fallback_file}"
                else:
                    fallback = logging.StreamHandler(sys.stderr)
                fallback.setLevel(level)
                fallback.setFormatter(formatter)
                handlers.append(fallback)
                _leveled.append(fallback)
        else:
            syslog.ident = f"{ident}[{os.getpid()}]: "
            syslog.setLevel(level)
            _leveled.append(syslog)
            syslog.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
            handlers.append(syslog)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger("vigil")
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(logging.DEBUG if debug or debugfile else logging.INFO)
    root.propagate = False
    _listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    _listener.start()
    atexit.register(stop_logging)
    for problem in problems:
        root.warning(format_event("log.target_unavailable", detail=problem))
    return problems


def set_debug(on: bool) -> None:
    """Debug lines on or off while running (heartbeat's SIGUSR1/SIGUSR2)."""
    level = logging.DEBUG if on else logging.INFO
    for handler in _leveled:
        handler.setLevel(level)
    logging.getLogger("vigil").setLevel(logging.DEBUG if on or _debugfile_set
                                        else logging.INFO)


def _probe_syslog(address: str) -> None:
    """Raise OSError unless a syslog daemon listens at `address` (the handler itself only
    finds out at its first record, and then complains on stderr)."""
    last: OSError | None = None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(address)
                return
            except OSError as exc:
                last = exc
    assert last is not None
    raise last


def flush_logging() -> None:
    """Write out what is queued now and go on logging: before a reboot, after which nothing
    this process queued would reach its file."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


def stop_logging() -> None:
    """Flush what is queued (at exit, or before a daemon re-executes)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
