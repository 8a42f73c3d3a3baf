"""The control socket (root only, JSON lines) and how `vigil status` renders its answer."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from vigil.cli.status import render
from vigil.control.client import request
from vigil.control.server import ControlServer
from vigil.errors import EnvironmentProblem, VigilError
from vigil.ha.engine import NodeConfig, NodeEngine
from vigil.ha.groups import groups_from_lines
from vigil.membership.auth import AuthKeys
from vigil.membership.liveness import Timings


@contextmanager
def serving(path, handler, allowed=None) -> Iterator[ControlServer]:
    allowed = frozenset({os.geteuid()}) if allowed is None else allowed
    loop = asyncio.new_event_loop()
    server = ControlServer(path, handler, allowed_uids=allowed)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def echo(request_: dict) -> dict:
    if request_.get("command") == "boom":
        raise RuntimeError("handler bug")
    return {"ok": True, "echo": request_}


def test_requests_and_answers_are_json_lines_and_the_socket_is_private(tmp_path):
    path = tmp_path / "hb.sock"
    with serving(path, echo):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        answer = request(path, "standby", which="local")
        assert answer["echo"] == {"command": "standby", "which": "local"}
        with pytest.raises(VigilError, match="internal error: handler bug"):
            request(path, "boom")
    assert not path.exists()


def test_other_users_are_refused(tmp_path):
    path = tmp_path / "hb.sock"
    with serving(path, echo, allowed=frozenset()), \
            pytest.raises(VigilError, match="permission denied"):
        request(path, "status")


def test_a_missing_daemon_is_one_clear_error(tmp_path):
    with pytest.raises(EnvironmentProblem, match="not running"):
        request(tmp_path / "nothing.sock", "status")


def test_status_renders_every_part():
    groups = groups_from_lines([("n1", ["IPaddr::198.51.100.100"])])
    config = NodeConfig(me="n1", nodes=("n1", "n2"), links=("eth0", "eth1"),
                        timings=Timings(keepalive=0.1, deadtime=0.5),
                        keys=AuthKeys.from_pairs(1, {1: ("crc", "")}), groups=groups,
                        ping_nodes=("198.51.100.250",))
    engine = NodeEngine(config, uuid=b"u" * 16, generation=3, now=0.0)
    engine.start(0.0)
    text = render(engine.status(0.25))
    assert "node n1 (this node): up, generation 3" in text
    assert "node n2: init, never heard" in text
    assert "  link eth1: init, never heard" in text
    assert "ping node 198.51.100.250: init" in text
    assert "group IPaddr::198.51.100.100 (home n1): run by nobody; here released" in text
    assert "rejected packets: bad_auth 0" in text


def test_deeply_nested_json_is_a_bad_request_and_the_next_request_is_served(tmp_path):
    import socket

    path = tmp_path / "hb.sock"
    with serving(path, echo):
        for body in (b"[" * 30000 + b"]" * 30000, b'{"a":' * 10000 + b"1" + b"}" * 10000,
                     b"[" * 100000):  # the last one is also too long
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(path))
                sock.sendall(body + b"\n")
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            assert b'"ok": false' in answer and b"bad request" in answer
        assert request(path, "status")["echo"] == {"command": "status"}
