"""An HTTP/1.1 client connection from inside a lab host, kept open across requests:
what the lab tests and benches use to see whether an established connection
survives a failover."""

from __future__ import annotations

import socket

from vigil.lab.host import Host


def http_exchange(sock: socket.socket, close: bool, pending: bytes = b"") -> tuple[str, bytes]:
    """One GET / on an open connection: the body, and the bytes read past it (kept for
    the next answer on a kept-alive connection; `pending` is what the last one left).
    Raises OSError on anything but 200, ConnectionError if the server closes first."""
    extra = b"Connection: close\r\n" if close else b""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: www\r\n" + extra + b"\r\n")
    data = pending

    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        return chunk

    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += more()
    if not head.startswith(b"HTTP/1.1 200"):
        status = head.split(b"\r\n")[0].decode(errors="replace")
        raise OSError(f"answer {status!r}")
    return body[:length].decode().strip(), body[length:]


class HttpConnection:
    """One HTTP/1.1 connection from a lab host, kept open across requests."""

    def __init__(self, host: Host, address: str, port: int = 80, source_port: int = 0,
                 timeout: float = 5.0):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = host.socket(family)
        self.sock.settimeout(timeout)
        if source_port:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", source_port))
        self.sock.connect((address, port))
        self.local_port = self.sock.getsockname()[1]
        self.buffer = b""

    def get(self, close: bool = False) -> str:
        body, self.buffer = http_exchange(self.sock, close, self.buffer)
        return body

    def close(self) -> None:
        self.sock.close()
