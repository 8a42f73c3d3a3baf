"""The state directory: uuid, generation and the peer marks survive restarts; damage is
reported, never a traceback."""

from __future__ import annotations

import json

from vigil.ha.identity import (
    PEER_MARKS_FILE,
    load_peer_marks,
    next_generation,
    node_uuid,
    save_peer_marks,
)


def test_uuid_stays_and_generation_grows(tmp_path):
    assert node_uuid(tmp_path) == node_uuid(tmp_path)
    first = next_generation(tmp_path)
    assert next_generation(tmp_path) == first + 1


def test_peer_marks_round_trip_through_the_state_directory(tmp_path):
    assert load_peer_marks(tmp_path) == ({}, None)
    save_peer_marks({"n2": (101, 4), "N3": (7, 1)}, tmp_path)
    assert json.loads((tmp_path / PEER_MARKS_FILE).read_text()) == {
        "N3": [7, 1], "n2": [101, 4]}
    assert (tmp_path / PEER_MARKS_FILE).stat().st_mode & 0o077 == 0
    assert load_peer_marks(tmp_path) == ({"n2": (101, 4), "n3": (7, 1)}, None)


def test_a_damaged_marks_file_is_reported_and_ignored(tmp_path):
    path = tmp_path / PEER_MARKS_FILE
    for content in (b"\xff", b"[1, 2]", b'{"n2": [1]}', b'{"n2": [1, -4]}',
                    b'{"n2": [true, 4]}', b'{"n2": [1, 99999999999999999999999]}',
                    b"[" * 100_000, b" " * 70_000):
        path.write_bytes(content)
        marks, problem = load_peer_marks(tmp_path)
        assert marks == {} and problem is not None and str(path) in problem


def test_hbgenmethod_time_takes_the_clock_and_keeps_no_file(tmp_path):
    import time
    before = int(time.time())
    generation = next_generation(tmp_path, "time")
    assert before <= generation <= int(time.time())
    assert not (tmp_path / "hb_generation").exists()
