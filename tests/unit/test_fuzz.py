"""Every decoder and parser fed mutated real inputs, a fixed budget each (vigil.testing.fuzz)."""

from __future__ import annotations

import pytest

from vigil.testing import fuzz

ENTRIES = fuzz.entry_points()
BUDGET = 1500


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_mutated_inputs_are_accepted_or_refused_never_raised(name):
    outcome = fuzz.run(name, ENTRIES[name], BUDGET, seed=20261204)
    assert outcome.inputs == BUDGET
    assert outcome.failed == 0, f"{outcome.failed} of {BUDGET} raised:\n" + \
        "\n".join(outcome.failures)


def test_numbers_and_times_of_any_length_are_refused_at_once():
    import time

    from vigil.config.base import ValueProblem, parse_heartbeat_time, parse_int

    started = time.monotonic()
    for text in ("9" * 100_000 + "x", "9" * 5000):
        with pytest.raises(ValueProblem):
            parse_heartbeat_time(text)
        with pytest.raises(ValueProblem):
            parse_int(text, 0, 65535, "udpport")
    assert time.monotonic() - started < 1.0  # no backtracking over the digits
