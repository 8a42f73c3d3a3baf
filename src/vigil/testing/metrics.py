"""Scrape a daemon's /metrics from inside a lab host and read samples out of it."""

from __future__ import annotations

import socket
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families


class Connects(Protocol):
    def connect(self, address: str, port: int, timeout: float = 2.0) -> socket.socket: ...


def scrape(host: Connects, port: int, address: str = "127.0.0.1",
           timeout: float = 3.0) -> str | None:
    """The exposition text served at address:port in the host's namespace, None when
    nothing answers there (yet)."""
    try:
        sock = host.connect(address, port, timeout=timeout)
    except OSError:
        return None
    try:
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        sock.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0]:
        return None
    return body.decode()


def sample(text: str | None, name: str, **labels: str) -> float | None:
    """The value of the sample `name` whose labels include `labels` (None: not there)."""
    if text is None:
        return None
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


__all__ = ["sample", "scrape"]
