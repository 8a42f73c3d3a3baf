"""fence-peer exit codes as DRBD reads them: who is outdated, and whether writes may go on."""

from __future__ import annotations

import pytest

from vigil.replication.fencing import fence_outcome


@pytest.mark.parametrize("code, uptodate, resolved, peer_outdated, outdate_self", [
    (3, True, True, True, False),
    (4, True, True, True, False),
    (7, False, True, True, False),
    (5, True, True, True, False),
    (5, False, True, False, False),
    (6, True, True, False, True),
    (0, True, False, False, False),
    (1, True, False, False, False),
    (2, True, False, False, False),
    (127, True, False, False, False),
])
def test_exit_codes(code, uptodate, resolved, peer_outdated, outdate_self):
    outcome = fence_outcome(code, uptodate)
    assert (outcome.resolved, outcome.peer_outdated, outcome.outdate_self) == (
        resolved, peer_outdated, outdate_self)
    assert outcome.why
