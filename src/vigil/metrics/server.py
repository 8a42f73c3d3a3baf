"""Serve a registry over HTTP from daemon threads, and collectors fed by snapshots.

prometheus-client's threading WSGI server answers each scrape in its own
daemon thread, so a slow or stuck scrape never holds the daemon's event loop
or heartbeat thread. A `SnapshotCollector` asks the daemon for the status
snapshot it already keeps (the one `vigil status --json` shows) at scrape
time, with a timeout, and turns it into metric families: no second set of
books.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigil.errors import EnvironmentProblem
from vigil.log import event
from vigil.metrics.address import MetricsAddress

log = logging.getLogger("vigil.metrics")
#: how long a scrape waits for the daemon's snapshot before it reports failure
SNAPSHOT_TIMEOUT = 2.0

Builder = Callable[[dict[str, Any]], Iterable[Metric]]


class SnapshotCollector(Collector):
    """Metric families built from `snapshot()` at scrape time by `build(snapshot)`.

    `prefix_up` is emitted as 1 when the snapshot came and 0 when it did not
    (the daemon busy beyond the timeout, or shutting down), so a dashboard can
    tell "no data" from "zero".
    """

    def __init__(self, snapshot: Callable[[], dict[str, Any]], build: Builder,
                 up_name: str, up_help: str):
        self.snapshot = snapshot
        self.build = build
        self.up_name = up_name
        self.up_help = up_help

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        try:
            snapshot = self.snapshot()
        except Exception as exc:  # a scrape must report, never raise into the server
            event(log, "metrics.snapshot_failed", logging.WARNING, error=repr(exc))
            yield GaugeMetricFamily(self.up_name, self.up_help, value=0)
            return
        yield GaugeMetricFamily(self.up_name, self.up_help, value=1)
        yield from self.build(snapshot)
        yield GaugeMetricFamily("vigil_scrape_snapshot_seconds",
                                "Time the daemon took to hand over its status snapshot",
                                value=time.monotonic() - started)


class MetricsServer:
    """`/metrics` for one registry on one address, served by daemon threads."""

    def __init__(self, address: MetricsAddress, registry: CollectorRegistry):
        self.address = address
        self.registry = registry
        self._httpd: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._httpd, self._thread = start_http_server(
                self.address.port, self.address.host, registry=self.registry)
        except OSError as exc:
            raise EnvironmentProblem(f"metrics: cannot listen on {self.address}: "
                                     f"{exc.strerror or exc}") from None
        event(log, "metrics.listening", address=str(self.address), port=self.port)

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the kernel's choice for 0)."""
        return int(self._httpd.server_port) if self._httpd is not None else self.address.port

    def close(self) -> None:
        """Stop serving; waits at most for the scrape in progress to end (bounded)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)


def exposition(registry: CollectorRegistry) -> str:
    """The text a scrape of `registry` returns (tests compare against it)."""
    return generate_latest(registry).decode()


__all__ = ["SNAPSHOT_TIMEOUT", "MetricsServer", "SnapshotCollector", "exposition"]
