"""An HTTP/1.1 client connection from inside a lab host, kept open across requests:
what the lab tests and benches use to see whether an established connection
survives a failover."""

from __future__ import annotations

import socket

from vigil.lab.host import Host


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
        extra = b"Connection: close\r\n" if close else b""
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: www\r\n" + extra + b"\r\n")
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self.buffer = head + b"\r\n\r\n" + rest
            self._read()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        body, self.buffer = rest[:length], rest[length:]
        if not head.startswith(b"HTTP/1.1 200"):
            raise OSError(f"bad answer {head[:40]!r}")
        return body.decode().strip()

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()
