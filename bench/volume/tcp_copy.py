"""The yardstick of a full sync: the same bytes copied over the same link by one TCP stream.

    tcp_copy.py receive PORT FILE     # writes what arrives at FILE, answers one byte
    tcp_copy.py send HOST PORT FILE   # sends FILE with sendfile, prints seconds

The receiver writes into the page cache as a resync target does (no fsync); the
sender's time runs from connect to the receiver's answer that all is written.
"""

from __future__ import annotations

import os
import socket
import sys
import time

CHUNK = 1 << 20


def receive(port: int, path: str) -> None:
    with socket.create_server(("", port)) as server:
        print("listening", flush=True)
        conn, _ = server.accept()
        with conn:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            buffer = bytearray(CHUNK)
            view = memoryview(buffer)
            offset = 0
            try:
                while True:
                    got = conn.recv_into(view)
                    if not got:
                        break
                    os.pwrite(fd, view[:got], offset)
                    offset += got
            finally:
                os.close(fd)
            conn.sendall(b"!")


def send(host: str, port: int, path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    deadline = time.monotonic() + 10
    while True:  # the receiver may not listen yet
        try:
            conn = socket.create_connection((host, port))
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    started = time.monotonic()
    with conn:
        sent = 0
        while sent < size:
            sent += os.sendfile(conn.fileno(), fd, sent, size - sent)
        conn.shutdown(socket.SHUT_WR)
        if conn.recv(1) != b"!":
            raise SystemExit("the receiver did not confirm")
    print(f"{time.monotonic() - started:.3f} {size}")


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        receive(int(sys.argv[2]), sys.argv[3])
    else:
        send(sys.argv[2], int(sys.argv[3]), sys.argv[4])
