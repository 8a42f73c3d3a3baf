"""`vigil torture`'s bad input: one clear line and exit 2, before any lab is built."""

from __future__ import annotations

import pytest

from vigil.cli.main import main


@pytest.mark.parametrize(("args", "message"), [
    (["--kinds", "nope"], "--kinds: unknown fault kind(s) nope for the heartbeat setup"),
    (["--kinds", "cut-replication"], "unknown fault kind(s) cut-replication"),
    (["--seconds", "0"], "--minutes/--seconds must add up to more than 0"),
    (["--faults", "0"], "--faults must be at least 1"),
    (["--json", "/nonexistent-dir/x.json"], "--json: no directory /nonexistent-dir"),
    (["--from-fault", "-1"], "--from-fault must be 0 or more"),
    (["--from-fault", "96", "--faults", "96"],
     "--faults 96 stops before --from-fault 96: give --faults 97 or more"),
])
def test_bad_input_is_one_clear_line(capsys, args, message):
    assert main(["torture", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unknown_setup_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["torture", "--setup", "nosuch"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err
