"""What the status page keeps of a director's and a volume's answers: named fields only,
hostile or broken answers kept as text or refused, never a failed page."""

from __future__ import annotations

import math
import socket
import threading
from pathlib import Path

from vigil.director import codec
from vigil.ha import localdaemons
from vigil.lvs.table import Forward, Protocol, RealServer, ServiceKey, Table, VirtualService

VIP = ServiceKey(Protocol.TCP, "198.51.100.100", 80)
RS1 = RealServer("198.51.100.21", 80, 1, Forward.GATE)
RS2 = RealServer("198.51.100.22", 80, 0, Forward.GATE)


def director_answer(**extra) -> dict:
    table = Table.of([VirtualService(VIP, "wlc", reals=(RS1, RS2))])
    return {"ok": True, "role": "active", "backend": "nftables",
            "table": codec.table_to_json(table),
            "health": [
                {"service": str(VIP), "real": str(RS1.key), "state": "up", "message": "OK"},
                {"service": str(VIP), "real": str(RS2.key), "state": "down",
                 "message": "connection refused"},
                {"service": str(VIP), "real": "198.51.100.23:80", "state": "down",
                 "message": ""},
            ], "secret": "never shown", **extra}


def test_a_director_view_joins_the_table_with_the_check_states():
    view = localdaemons.director_view("ldirectord", director_answer())
    assert view["role"] == "active" and view["backend"] == "nftables"
    [service] = view["services"]
    assert service["service"] == str(VIP) and service["scheduler"] == "wlc"
    rows = {r["real"]: r for r in service["reals"]}
    assert rows[str(RS1.key)] == {"real": str(RS1.key), "weight": 1, "forward": "gate",
                                  "state": "up", "message": "OK"}
    assert rows[str(RS2.key)]["weight"] == 0 and rows[str(RS2.key)]["state"] == "down"
    # checked but not in the table (quiescent no): shown as such, no weight
    assert rows["198.51.100.23:80"]["weight"] is None
    assert rows["198.51.100.23:80"]["message"] == "not in the table"
    assert "never shown" not in repr(view)


def test_a_broken_director_answer_is_an_error_line_not_an_exception():
    for table in ({"not": "a list"}, [{"key": 5}], ["x"], [{"reals": []}]):
        view = localdaemons.director_view("x", director_answer(table=table))
        assert view == {"instance": "x", "error": "its table could not be read"}
    view = localdaemons.director_view("x", director_answer(health="nonsense"))
    assert all(r["state"] == "" for r in view["services"][0]["reals"])


def test_a_director_that_announces_shows_each_prefix_and_why():
    announce = {"speaker": "exabgp", "draining": True, "holddown": 0.0, "vips": [
        {"vip": "198.51.100.100", "prefix": "198.51.100.100/32", "announced": False,
         "cause": "draining", "secret": "never shown"},
        {"vip": "2001:db8::100", "prefix": "2001:db8::100/128", "announced": True,
         "cause": "serving"}]}
    view = localdaemons.director_view("ldirectord", director_answer(announce=announce))
    assert view["announce"] == {"speaker": "exabgp", "draining": True, "prefixes": [
        {"prefix": "198.51.100.100/32", "announced": False, "cause": "draining"},
        {"prefix": "2001:db8::100/128", "announced": True, "cause": "serving"}]}
    assert "never shown" not in repr(view)
    # a director that announces nothing, and hostile shapes: never an exception
    assert localdaemons.director_view("x", director_answer())["announce"] is None
    assert localdaemons.director_view("x", director_answer(announce=None))["announce"] is None
    for hostile in ("text", [1], {"vips": "x"}, {"vips": [1, None, {"announced": "yes"}]},
                    {"vips": [{"prefix": "p"}] * 1000, "draining": "yes"}):
        shown = localdaemons.announce_view(hostile)
        assert shown is None or (len(shown["prefixes"]) <= localdaemons.MAX_PREFIXES
                                 and shown["draining"] is False
                                 and all(p["announced"] is False for p in shown["prefixes"]))


def test_a_volume_view_keeps_named_fields_as_text_and_finite_numbers():
    status = {"role": "Primary", "peer_role": "Secondary", "connection": "Connected",
              "replication": "SyncSource", "disk": "UpToDate", "peer_disk": "Inconsistent",
              "out_of_sync": 8192, "split_brain": False, "io_suspended": None,
              "sync": {"percent": 42.0, "rate": math.inf, "eta": 3.5, "left_bytes": 8192},
              "generations": "secret-ish", "stats": {"x": 1}}
    view = localdaemons.volume_view("r0", status)
    assert view["role"] == "Primary" and view["peer_disk"] == "Inconsistent"
    assert view["out_of_sync"] == 8192.0 and view["io_suspended"] == ""
    assert view["sync"] == {"percent": 42.0, "rate": None, "eta": 3.5, "left_bytes": 8192.0}
    assert "generations" not in view and "stats" not in view
    hostile = localdaemons.volume_view("r0", {"role": "<b>" * 500, "out_of_sync": "many",
                                              "sync": "fast"})
    assert len(hostile["role"]) == 200 and hostile["out_of_sync"] is None
    assert hostile["sync"] is None
    assert localdaemons.volume_view("r0", ["no"]) == {"name": "r0", "error": "it sent no status"}


def serve_once(path: Path, reply: bytes) -> threading.Thread:
    """A unix socket that answers one request with `reply` (a daemon's real framing)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def answer() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_gone_daemons_are_left_out_and_unreadable_ones_say_so(tmp_path):
    # a stale socket (nobody listens): the daemon is gone, nothing is listed
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "director.old.sock"))
    stale.close()
    thread = serve_once(tmp_path / "director.bad.sock", b"not json\n")
    views = localdaemons.directors(tmp_path, timeout=2.0)
    thread.join(5)
    assert [v["instance"] for v in views] == ["bad"]
    assert "does not answer" in views[0]["error"]
    volume_dir = tmp_path / "volume"
    (volume_dir / "r0").mkdir(parents=True)
    thread = serve_once(volume_dir / "r0" / "control.sock", b"not json\n")
    [volume] = localdaemons.volumes(volume_dir, timeout=2.0)
    thread.join(5)
    assert volume["name"] == "r0" and "does not answer" in volume["error"]
