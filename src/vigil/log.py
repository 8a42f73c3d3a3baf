"""Logging for the daemons: `event.name key=value` lines that never block the loop.

Records go through a queue to a listener thread (`QueueHandler`), so a slow
disk or syslog never delays a heartbeat. State changes are one clear line each.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from pathlib import Path
from typing import Any

_listener: logging.handlers.QueueListener | None = None


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


def setup_logging(logfile: str | Path | None = None, debug: bool = False,
                  stream: bool = True) -> None:
    """Send vigil's log records through a queue to stderr and/or a file."""
    global _listener
    if _listener is not None:
        _listener.stop()
    handlers: list[logging.Handler] = []
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    if stream:
        handlers.append(logging.StreamHandler(sys.stderr))
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile))
    for handler in handlers:
        handler.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger("vigil")
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False
    _listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    _listener.start()
    atexit.register(stop_logging)


def stop_logging() -> None:
    """Flush what is queued (at exit, or before a daemon re-executes)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
