"""The few etcd v3 calls a lease holder needs, over etcd's JSON gateway (HTTP).

etcd serves its gRPC API as JSON on the client port (`/v3/...`): keys and values
are base64, 64-bit numbers are strings. Calls are blocking (`http.client`, a
timeout on every one) and meant to run in a worker thread; each tries the
endpoints in turn, so one dead member costs one timeout, not the call. Every
answer is the store's word on who may run a group, and is checked before use:
a body larger than MAX_ANSWER, not JSON, or with a field of the wrong type is
an `EtcdError`, as is an error status.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: the largest answer read from the store (the calls here answer a few hundred bytes)
MAX_ANSWER = 64 * 1024
#: the largest node name kept under a group's key
MAX_VALUE = 255
#: the most keys one prefix read returns (one per node of a cluster)
MAX_KEYS = 64


class EtcdError(Exception):
    """The store did not answer, or answered something that is not etcd's protocol."""


class _Unavailable(EtcdError):
    """This member cannot serve the call now (no leader, no quorum): ask another."""


@dataclass(frozen=True)
class Acquired:
    """A create-if-absent transaction's outcome: ours, or who holds the key (None: nobody
    by the time the store looked)."""

    ours: bool
    holder: str | None


@dataclass(frozen=True)
class MemberStatus:
    """One member's word about itself (etcd's maintenance status)."""

    leader: bool
    version: str
    raft_term: int


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _number(fields: dict[str, Any], name: str, default: int | None = None) -> int:
    """etcd's int64 fields: JSON strings of digits (a zero is left out of the answer)."""
    value = fields.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EtcdError(f"the store's {name!r} is not a number")
    text = str(value)
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise EtcdError(f"the store's {name!r} is not a number")
    return int(text)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EtcdError(f"the store's {what} is not an object")
    return value


def _text(value: Any, what: str) -> str:
    """A base64 field of the store's, decoded: printable text of at most MAX_VALUE."""
    if not isinstance(value, str) or len(value) > 2 * MAX_VALUE:
        raise EtcdError(f"the store's {what} is not a short base64 text")
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise EtcdError(f"the store's {what} is not base64 of a text") from None
    if len(text) > MAX_VALUE or not text.isprintable():
        raise EtcdError(f"the store's {what} is not printable text")
    return text


def _holder(kv: dict[str, Any]) -> str:
    name = _text(kv.get("value", ""), "value")
    if not name:
        raise EtcdError("the store's value is not a node name")
    return name


class EtcdGateway:
    """etcd's JSON gateway at `endpoints` ("http://host:2379"), tried in turn."""

    def __init__(self, endpoints: Sequence[str], timeout: float = 2.0):
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self.endpoints = [self._parse(e) for e in endpoints]
        self.timeout = timeout
        #: the endpoint that answered last is asked first next time
        self._first = 0

    @staticmethod
    def _parse(endpoint: str) -> tuple[str, int]:
        url = urllib.parse.urlsplit(endpoint if "//" in endpoint else f"http://{endpoint}")
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"etcd endpoint {endpoint!r}: http://HOST:PORT expected")
        return url.hostname, url.port or 2379

    # -- the calls --------------------------------------------------------------------
    def grant(self, ttl: int) -> tuple[int, int]:
        """A new lease: (its ID, the TTL the store gave it)."""
        return read_grant(self._call("/v3/lease/grant", {"TTL": ttl}))

    def keepalive(self, lease: int) -> int:
        """Refresh a lease: the TTL it has now (0: the store has let it go)."""
        return read_keepalive(self._call("/v3/lease/keepalive", {"ID": str(lease)}))

    def revoke(self, lease: int) -> None:
        """End a lease now: its keys go with it (a lease already gone is no error)."""
        try:
            self._call("/v3/lease/revoke", {"ID": str(lease)})
        except EtcdError as exc:
            if "not found" not in str(exc):
                raise

    def acquire(self, key: str, node: str, lease: int) -> Acquired:
        """Put `key` = `node` under `lease` if the key does not exist; else say who holds it."""
        if not node or len(node) > MAX_VALUE:
            raise ValueError("a node name of 1 to 255 characters")
        answer = self._call("/v3/kv/txn", {
            "compare": [{"key": _b64(key), "target": "CREATE", "result": "EQUAL",
                         "create_revision": "0"}],
            "success": [{"request_put": {"key": _b64(key), "value": _b64(node),
                                         "lease": str(lease)}}],
            "failure": [{"request_range": {"key": _b64(key)}}],
        })
        return read_acquired(answer, node)

    def holder(self, key: str) -> str | None:
        """Who holds `key` now (None: nobody)."""
        return read_holder(self._call("/v3/kv/range", {"key": _b64(key)}))

    def put(self, key: str, value: str, lease: int) -> None:
        """Set `key` = `value` under `lease` (it goes with the lease)."""
        if len(value) > MAX_VALUE:
            raise ValueError("a value of at most 255 characters")
        self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(value), "lease": str(lease)})

    def under(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix` (at most MAX_KEYS) and its value."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\0"
        return read_values(self._call("/v3/kv/range", {
            "key": _b64(prefix), "range_end": _b64(end), "limit": str(MAX_KEYS)}), prefix)

    def member_status(self, index: int) -> MemberStatus:
        """Ask one member (by its place in `endpoints`) how it is: no other is tried."""
        host, port = self.endpoints[index]
        try:
            return read_member_status(self._post(host, port, "/v3/maintenance/status", b"{}"))
        except (OSError, http.client.HTTPException) as exc:
            raise EtcdError(f"{host}:{port}: {exc or type(exc).__name__}") from None

    # -- HTTP -------------------------------------------------------------------------
    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        errors = []
        count = len(self.endpoints)
        for i in range(count):
            index = (self._first + i) % count
            host, port = self.endpoints[index]
            try:
                answer = self._post(host, port, path, payload)
            except (OSError, http.client.HTTPException, _Unavailable) as exc:
                errors.append(f"{host}:{port}: {exc or type(exc).__name__}")
                continue
            self._first = index
            return answer
        raise EtcdError(f"{path}: no etcd endpoint answered ({'; '.join(errors)})")

    def _post(self, host: str, port: int, path: str, payload: bytes) -> dict[str, Any]:
        connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            connection.request("POST", path, body=payload,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read(MAX_ANSWER + 1)
        finally:
            connection.close()
        return read_answer(path, response.status, data)


# -- the store's answers, checked (pure: the fuzzer feeds them damaged ones) --------------------
def read_answer(path: str, status: int, data: bytes) -> dict[str, Any]:
    """An HTTP answer's body as a JSON object, or EtcdError (an unavailable member's:
    `_Unavailable`, so that the next one is asked)."""
    if len(data) > MAX_ANSWER:
        raise EtcdError(f"{path}: the store's answer is larger than {MAX_ANSWER} bytes")
    try:
        answer = json.loads(data)
    except ValueError:
        raise EtcdError(f"{path}: the store's answer is not JSON "
                        f"(HTTP {status})") from None
    answer = _object(answer, "answer")
    if status != 200 or "error" in answer:
        error = answer.get("error")
        message = str(answer.get("message") or (error.get("message") if isinstance(
            error, dict) else error) or "")[:200]
        unavailable = status >= 500 or "leader" in message or \
            "timed out" in message
        raise (_Unavailable if unavailable else EtcdError)(
            f"{path}: HTTP {status}: {message}")
    return answer


def read_grant(answer: dict[str, Any]) -> tuple[int, int]:
    lease, given = _number(answer, "ID"), _number(answer, "TTL", 0)
    if lease <= 0 or given <= 0:
        raise EtcdError("the store granted no lease")
    return lease, given


def read_keepalive(answer: dict[str, Any]) -> int:
    result = _object(answer.get("result", {}), "keep-alive result")
    return max(0, _number(result, "TTL", 0))


def read_acquired(answer: dict[str, Any], node: str) -> Acquired:
    succeeded = answer.get("succeeded", False)
    if not isinstance(succeeded, bool):
        raise EtcdError("the store's 'succeeded' is not a boolean")
    if succeeded:
        return Acquired(True, node)
    responses = answer.get("responses", [])
    if not isinstance(responses, list) or len(responses) != 1:
        raise EtcdError("the store's transaction answer has no range")
    ranged = _object(_object(responses[0], "response").get("response_range", {}), "range")
    return Acquired(False, read_holder(ranged))


def read_holder(ranged: dict[str, Any]) -> str | None:
    kvs = ranged.get("kvs", [])
    if not isinstance(kvs, list) or len(kvs) > 1:
        raise EtcdError("the store's range answer is not one key or none")
    return _holder(_object(kvs[0], "key-value")) if kvs else None


def read_member_status(answer: dict[str, Any]) -> MemberStatus:
    header = _object(answer.get("header", {}), "status header")
    member, leader = _number(header, "member_id", 0), _number(answer, "leader", 0)
    version = answer.get("version", "")
    if not isinstance(version, str) or len(version) > 32 or not version.isprintable():
        raise EtcdError("the store's version is not a short text")
    return MemberStatus(leader=member != 0 and member == leader, version=version,
                        raft_term=_number(answer, "raftTerm", 0))


def read_values(ranged: dict[str, Any], prefix: str) -> dict[str, str]:
    """A prefix read's keys (each under `prefix`) and values."""
    kvs = ranged.get("kvs", [])
    if not isinstance(kvs, list) or len(kvs) > MAX_KEYS or ranged.get("more", False):
        # a cut list would leave nodes out: a node's reach unknown is no fit node
        raise EtcdError(f"the store's range answer is not a list of at most {MAX_KEYS} keys")
    found = {}
    for kv in kvs:
        kv = _object(kv, "key-value")
        key = _text(kv.get("key", ""), "key")
        if not key.startswith(prefix):
            raise EtcdError(f"the store answered a key outside {prefix!r}")
        found[key] = _text(kv.get("value", ""), "value")
    return found
