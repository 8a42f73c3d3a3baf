"""The shared /metrics server: addresses, serving from threads, a stuck daemon."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from vigil.errors import EnvironmentProblem, UsageError
from vigil.metrics import (
    MetricsAddress,
    MetricsServer,
    SnapshotCollector,
    exposition,
    parse_address,
)


@pytest.mark.parametrize(("text", "host", "port"), [
    ("9694", "127.0.0.1", 9694),
    ("0.0.0.0:9100", "0.0.0.0", 9100),
    ("[::1]:9694", "::1", 9694),
    ("server5.example.com:9694", "server5.example.com", 9694),
])
def test_addresses(text, host, port):
    address = parse_address(text)
    assert (address.host, address.port) == (host, port)
    assert parse_address(str(address)) == address


@pytest.mark.parametrize("text", ["localhost", "1.2.3.4:0", ":80", "[fe80::zz]:1", "70000"])
def test_bad_addresses_name_their_source(text):
    with pytest.raises(UsageError, match=r"^--metrics-address: bad"):
        parse_address(text, "--metrics-address")


def test_a_shifted_port_stays_in_range():
    assert parse_address("9694").shifted(2).port == 9696
    with pytest.raises(UsageError, match="out of range"):
        parse_address("65535").shifted(1)


def build(snapshot):
    family = GaugeMetricFamily("demo_value", "A value", labels=["name"])
    family.add_metric([snapshot["name"]], snapshot["value"])
    yield family


def test_a_snapshot_becomes_families_and_a_failing_one_says_up_0():
    registry = CollectorRegistry()
    answers = [{"name": "a", "value": 3}]

    def snapshot():
        if not answers:
            raise TimeoutError("busy")
        return answers.pop()
    registry.register(SnapshotCollector(snapshot, build, "demo_up", "Up"))
    text = exposition(registry)
    assert "demo_up 1.0" in text and 'demo_value{name="a"} 3.0' in text
    text = exposition(registry)
    assert "demo_up 0.0" in text and "demo_value" not in text


def test_served_over_http_and_a_stuck_scrape_does_not_hold_the_next():
    registry = CollectorRegistry()
    release = threading.Event()
    first = threading.Event()

    def snapshot():
        if not first.is_set():
            first.set()
            release.wait(10)  # a scrape stuck in the daemon
        return {"name": "b", "value": 1}
    registry.register(SnapshotCollector(snapshot, build, "demo_up", "Up"))
    server = MetricsServer(MetricsAddress("127.0.0.1", 0), registry)
    server.start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    stuck = threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=10).read())
    try:
        stuck.start()
        assert first.wait(5)
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = answer.read().decode()
        assert 'demo_value{name="b"} 1.0' in body
    finally:
        release.set()
        stuck.join(10)
        server.close()


def test_a_busy_port_is_one_clear_error():
    registry = CollectorRegistry()
    first = MetricsServer(MetricsAddress("127.0.0.1", 0), registry)
    first.start()
    try:
        second = MetricsServer(MetricsAddress("127.0.0.1", first.port), registry)
        with pytest.raises(EnvironmentProblem, match=r"metrics: cannot listen on 127\.0\.0\.1:\d+"):
            second.start()
    finally:
        first.close()


def test_pages_are_served_beside_metrics_read_only():
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: {"name": "c", "value": 2}, build, "demo_up", "Up"))

    def broken():
        raise TimeoutError("the daemon is busy")
    server = MetricsServer(MetricsAddress("127.0.0.1", 0), registry, pages={
        "/": lambda: ("text/html; charset=utf-8", b"<p>page</p>"),
        "/status.json": lambda: ("application/json", b'{"ok": true}'),
        "/broken": broken})
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(base + "/", timeout=5) as answer:
            assert answer.read() == b"<p>page</p>"
            assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
            assert answer.headers["Cache-Control"] == "no-store"
            assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        with urllib.request.urlopen(base + "/status.json", timeout=5) as answer:
            assert answer.read() == b'{"ok": true}'
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            assert 'demo_value{name="c"} 2.0' in answer.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(base + "/", data=b"x"), timeout=5)
        assert refused.value.code == 405
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(base + "/broken", timeout=5)
        assert failed.value.code == 503
    finally:
        server.close()


def test_created_series_are_off_with_prometheus_client_before_0_17():
    """Debian 12's prometheus-client 0.16 has no disable_created_metrics(), only the switch."""
    import types

    from prometheus_client import Counter

    from vigil.metrics import disable_created_series

    old = types.SimpleNamespace(metrics=types.SimpleNamespace(_use_created=True))
    disable_created_series(old)  # type: ignore[arg-type]
    assert old.metrics._use_created is False

    called = []
    disable_created_series(types.SimpleNamespace(  # type: ignore[arg-type]
        disable_created_metrics=lambda: called.append(True)))
    assert called == [True]

    registry = CollectorRegistry()
    Counter("vigil_test_total", "a counter", registry=registry).inc()
    text = exposition(registry)
    assert "vigil_test_total 1.0" in text and "_created" not in text
