"""etcd's JSON gateway as the lease holder calls it: answers checked, members tried in turn.

A small HTTP server on loopback plays the store (or a broken or hostile one);
the real etcd is in tests/lab/cluster/test_etcd_lab.py.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vigil.cluster.etcd import MAX_ANSWER, Acquired, EtcdError, EtcdGateway, MemberStatus

Answer = tuple[int, bytes]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class FakeStore:
    """Answers each path with what the test says; records what was asked."""

    def __init__(self, answers: dict[str, Callable[[dict], Answer]]):
        self.answers = answers
        self.asked: list[tuple[str, dict]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                store.asked.append((self.path, body))
                status, payload = store.answers[self.path](body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store() -> Iterator[Callable[[dict[str, Callable[[dict], Answer]]], FakeStore]]:
    made: list[FakeStore] = []

    def make(answers: dict[str, Callable[[dict], Answer]]) -> FakeStore:
        made.append(FakeStore(answers))
        return made[-1]
    yield make
    for each in made:
        each.close()


def ok(payload: dict) -> Callable[[dict], Answer]:
    return lambda body: (200, json.dumps(payload).encode())


def test_the_calls_speak_etcds_json_and_read_its_answers(store):
    etcd = store({
        "/v3/lease/grant": ok({"ID": "7587867400331232781", "TTL": "10"}),
        "/v3/lease/keepalive": ok({"result": {"ID": "7587867400331232781", "TTL": "9"}}),
        "/v3/kv/txn": ok({"responses": [{"response_range": {"kvs": [
            {"key": b64("/vigil/g"), "value": b64("server6.example.com"),
             "create_revision": "4"}], "count": "1"}}]}),
        "/v3/kv/range": ok({"header": {}}),
        "/v3/lease/revoke": ok({"header": {}}),
    })
    gateway = EtcdGateway([etcd.endpoint])
    assert gateway.grant(10) == (7587867400331232781, 10)
    assert gateway.keepalive(7587867400331232781) == 9
    assert gateway.acquire("/vigil/g", "server5.example.com", 7587867400331232781) == \
        Acquired(False, "server6.example.com")
    assert gateway.holder("/vigil/g") is None
    gateway.revoke(7587867400331232781)
    path, txn = etcd.asked[2]
    assert path == "/v3/kv/txn"
    assert txn["compare"] == [{"key": b64("/vigil/g"), "target": "CREATE", "result": "EQUAL",
                               "create_revision": "0"}]
    assert txn["success"][0]["request_put"] == {
        "key": b64("/vigil/g"), "value": b64("server5.example.com"),
        "lease": "7587867400331232781"}


def test_a_lease_the_store_let_go_refreshes_to_zero(store):
    etcd = store({"/v3/lease/keepalive": ok({"result": {"ID": "5"}})})  # TTL 0 is left out
    assert EtcdGateway([etcd.endpoint]).keepalive(5) == 0


@pytest.mark.parametrize("answer", [
    (200, b"not json"),
    (200, b"[1, 2]"),
    (200, json.dumps({"ID": "12abc", "TTL": "10"}).encode()),
    (200, json.dumps({"ID": True, "TTL": "10"}).encode()),
    (200, json.dumps({"ID": "0", "TTL": "10"}).encode()),
    (200, json.dumps({"ID": "9" * 30, "TTL": "10"}).encode()),
    (200, json.dumps({"ID": "1", "TTL": "10", "pad": "x" * MAX_ANSWER}).encode()),
    (400, json.dumps({"error": "bad", "message": "bad request"}).encode()),
])
def test_an_answer_that_is_not_etcds_is_an_error_never_a_lease(store, answer):
    etcd = store({"/v3/lease/grant": lambda body: answer})
    with pytest.raises(EtcdError):
        EtcdGateway([etcd.endpoint]).grant(10)


@pytest.mark.parametrize("kvs", [
    [{"value": "%%%"}],  # not base64
    [{"value": b64("a\nb")}],  # not a printable name
    [{"value": b64("")}],
    [{"value": b64("x")}, {"value": b64("y")}],  # one key asked, two answered
    "kvs",
    [["value"]],
])
def test_a_holder_that_is_not_one_node_name_is_an_error(store, kvs):
    etcd = store({"/v3/kv/range": ok({"kvs": kvs})})
    with pytest.raises(EtcdError):
        EtcdGateway([etcd.endpoint]).holder("/vigil/g")


def test_a_dead_member_or_one_without_a_leader_is_skipped(store):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    leaderless = store({"/v3/lease/grant": lambda body: (
        503, json.dumps({"error": "etcdserver: no leader", "code": 14}).encode())})
    good = store({"/v3/lease/grant": ok({"ID": "42", "TTL": "5"})})
    try:
        gateway = EtcdGateway([f"http://127.0.0.1:{dead.getsockname()[1]}",
                               leaderless.endpoint, good.endpoint], timeout=2.0)
        assert gateway.grant(5) == (42, 5)
        assert gateway.grant(5) == (42, 5)  # the member that answered is asked first now
        assert len(leaderless.asked) == 1
    finally:
        dead.close()
    with pytest.raises(EtcdError, match="no etcd endpoint answered"):
        EtcdGateway([leaderless.endpoint]).grant(5)


def test_endpoints_are_http_urls():
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        EtcdGateway(["https://198.51.100.5:2379"])
    assert EtcdGateway(["198.51.100.5"]).endpoints == [("198.51.100.5", 2379)]


def test_each_member_says_how_it_is_and_a_damaged_answer_is_an_error(store):
    leader = store({"/v3/maintenance/status": ok({
        "header": {"cluster_id": "1", "member_id": "8211f1d0f64f3269", "raft_term": "3"},
        "version": "3.4.23", "leader": "8211f1d0f64f3269", "raftTerm": "3"})})
    follower = store({"/v3/maintenance/status": ok({
        "header": {"member_id": "91bc3c398fb3c146"}, "version": "3.4.23",
        "leader": "8211f1d0f64f3269", "raftTerm": "3"})})
    hostile = store({"/v3/maintenance/status": ok({
        "header": {"member_id": "1"}, "version": "x" * 100, "leader": "1"})})
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    try:
        gateway = EtcdGateway([leader.endpoint, follower.endpoint, hostile.endpoint,
                               f"http://127.0.0.1:{dead.getsockname()[1]}"], timeout=2.0)
        # etcd writes member IDs in decimal; hex here is not digits: an error, not a guess
        with pytest.raises(EtcdError, match="member_id"):
            gateway.member_status(0)
        with pytest.raises(EtcdError, match="version"):
            gateway.member_status(2)
        with pytest.raises(EtcdError, match=r"127\.0\.0\.1"):
            gateway.member_status(3)
    finally:
        dead.close()
    decimal = store({"/v3/maintenance/status": ok({
        "header": {"member_id": "9372538179322589801"}, "version": "3.4.23",
        "leader": "9372538179322589801", "raftTerm": "7"})})
    other = store({"/v3/maintenance/status": ok({
        "header": {"member_id": "17"}, "version": "3.4.23",
        "leader": "9372538179322589801", "raftTerm": "7"})})
    gateway = EtcdGateway([decimal.endpoint, other.endpoint])
    assert gateway.member_status(0) == MemberStatus(leader=True, version="3.4.23", raft_term=7)
    assert gateway.member_status(1) == MemberStatus(leader=False, version="3.4.23",
                                                    raft_term=7)
    assert decimal.asked == [("/v3/maintenance/status", {})]


def test_a_value_is_put_under_a_lease_and_a_prefix_read_back_checked(store):
    etcd = store({
        "/v3/kv/put": ok({"header": {}}),
        "/v3/kv/range": ok({"kvs": [{"key": b64("/vigil/reach/server5"), "value": b64("2")},
                                    {"key": b64("/vigil/reach/server6"), "value": b64("1")}],
                            "count": "2"}),
    })
    gateway = EtcdGateway([etcd.endpoint])
    gateway.put("/vigil/reach/server5", "2", 42)
    assert gateway.under("/vigil/reach/") == {"/vigil/reach/server5": "2",
                                               "/vigil/reach/server6": "1"}
    assert [path for path, _ in etcd.asked] == ["/v3/kv/put", "/v3/kv/range"]
    (_, put), (_, ranged) = etcd.asked
    assert put == {"key": b64("/vigil/reach/server5"), "value": b64("2"), "lease": "42"}
    assert ranged["key"] == b64("/vigil/reach/") and ranged["range_end"] == b64("/vigil/reach0")


@pytest.mark.parametrize("kvs", [
    [{"key": b64("/elsewhere/x"), "value": b64("1")}],  # outside the prefix asked
    [{"key": b64("/vigil/reach/a"), "value": b64("1\n")}],
    [{"key": "%%", "value": b64("1")}],
    [{"key": b64("/vigil/reach/a"), "value": b64("1")}] * 65,  # more than asked for
    {"more": True},  # the store cut the list at the limit
])
def test_a_prefix_read_that_is_not_what_was_asked_is_an_error(store, kvs):
    answer = kvs if isinstance(kvs, dict) else {"kvs": kvs}
    etcd = store({"/v3/kv/range": ok(answer)})
    with pytest.raises(EtcdError):
        EtcdGateway([etcd.endpoint]).under("/vigil/reach/")
