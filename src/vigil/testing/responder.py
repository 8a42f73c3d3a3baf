"""A TCP responder for lab hosts: it answers each connection on port 80 with its
host's short name, so a client (or a failover benchmark) sees who holds the VIP."""

from __future__ import annotations

import textwrap

#: Python code for `python -c`; prints "ready" once it listens.
NAME_RESPONDER = textwrap.dedent("""
    import socket
    name = socket.gethostname().split(".")[0].encode()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 80))
    server.listen(128)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        try:
            conn.sendall(name + b"\\n")
        finally:
            conn.close()
""")
