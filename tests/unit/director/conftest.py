"""Fixtures shared by the director's unit tests."""

from __future__ import annotations

import pytest

from vigil.director import daemon


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """The daemon's run and state directories moved under the test's own tmp_path."""
    monkeypatch.setattr(daemon, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(daemon, "STATE_DIR", tmp_path / "state")
    (tmp_path / "run").mkdir()
    return tmp_path
