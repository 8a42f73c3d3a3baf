"""Serve a registry over HTTP from daemon threads, and collectors fed by snapshots.

prometheus-client's threading WSGI server answers each scrape in its own
daemon thread, so a slow or stuck scrape never holds the daemon's event loop
or heartbeat thread. A daemon may serve read-only pages beside `/metrics` on
the same address (`pages`: path -> a function returning the content type and
body); they are answered from the same threads.

A `SnapshotCollector` asks the daemon for the status snapshot it already
keeps (the one `vigil status --json` shows) at scrape time, with a timeout,
and turns it into metric families: no second set of books.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigil.errors import EnvironmentProblem
from vigil.log import event
from vigil.metrics.address import MetricsAddress

log = logging.getLogger("vigil.metrics")
#: how long a scrape waits for the daemon's snapshot before it reports failure
SNAPSHOT_TIMEOUT = 2.0

Builder = Callable[[dict[str, Any]], Iterable[Metric]]
#: a page served beside /metrics: () -> (content type, body)
Page = Callable[[], tuple[str, bytes]]


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


class _Threading(ThreadingMixIn, WSGIServer):
    """One daemon thread per request; a stuck client holds only its own thread."""

    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: a scrape every few seconds would drown the log."""


class MetricsServer:
    """`/metrics` for one registry on one address, served by daemon threads, and the
    read-only `pages` beside it."""

    def __init__(self, address: MetricsAddress, registry: CollectorRegistry,
                 pages: Mapping[str, Page] | None = None):
        self.address = address
        self.registry = registry
        self.pages = dict(pages or {})
        self._metrics = make_wsgi_app(registry)
        self._httpd: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            family, *_, sockaddr = socket.getaddrinfo(
                self.address.host, self.address.port, type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE)[0]
            server = type("_Server", (_Threading,), {"address_family": family})
            self._httpd = make_server(str(sockaddr[0]), self.address.port, self._app,
                                      server, handler_class=_Quiet)
        except OSError as exc:
            raise EnvironmentProblem(f"metrics: cannot listen on {self.address}: "
                                     f"{exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="vigil-metrics", daemon=True)
        self._thread.start()
        event(log, "metrics.listening", address=str(self.address), port=self.port)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        page = self.pages.get(environ.get("PATH_INFO") or "/")
        if page is None:
            return self._metrics(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"),
                                                      ("Content-Type", "text/plain")])
            return [b"read-only\n"]
        try:
            content_type, body = page()
        except Exception as exc:  # a page must answer, never raise into the server
            event(log, "metrics.page_failed", logging.WARNING,
                  path=environ.get("PATH_INFO"), error=repr(exc))
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                       ("Cache-Control", "no-store")])
            return [b"the daemon did not answer\n"]
        start_response("200 OK", [
            ("Content-Type", content_type), ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
            # the page is self-contained: nothing but itself and its own address
            ("Content-Security-Policy", "default-src 'none'; connect-src 'self'; "
             "img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
            ("Referrer-Policy", "no-referrer")])
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

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


__all__ = ["SNAPSHOT_TIMEOUT", "MetricsServer", "Page", "SnapshotCollector", "exposition"]
