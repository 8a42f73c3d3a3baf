"""What an ldirectord.cf reload changes, said line by line."""

from __future__ import annotations

from vigil.director.adapter import load_config
from vigil.director.changes import describe

BASE = """checktimeout=3
autoreload=yes
quiescent=yes
virtual=198.51.100.10:80
    real=198.51.100.1:80 gate
    real=198.51.100.2:80 gate
    scheduler=rr
    checktype=connect
virtual=198.51.100.10:443
    real=198.51.100.1:443 gate
    checktype=connect
"""


def config(tmp_path, text: str, name: str = "a.cf"):
    path = tmp_path / name
    path.write_text(text)
    return load_config(path)


def test_the_same_file_changes_nothing(tmp_path):
    assert describe(config(tmp_path, BASE), config(tmp_path, BASE, "b.cf")) == []


def test_every_difference_is_said(tmp_path):
    new = (BASE.replace("real=198.51.100.2:80 gate", "real=198.51.100.2:80 gate 3\n"
                        "    real=198.51.100.3:80 gate")
           .replace("scheduler=rr", "scheduler=wrr")
           .replace("autoreload=yes", "autoreload=no")
           .replace("virtual=198.51.100.10:443\n    real=198.51.100.1:443 gate\n"
                    "    checktype=connect\n", ""))
    said = describe(config(tmp_path, BASE), config(tmp_path, new, "b.cf"))
    assert "autoreload True -> False" in said
    assert any(line.endswith(":443 removed") and line.startswith("virtual ") for line in said)
    assert any("real 198.51.100.2:80 weight 1 -> 3" in line for line in said)
    assert any("real 198.51.100.3:80 added" in line for line in said)
    assert any("scheduler" in line for line in said)
    assert len(said) == 5, said
