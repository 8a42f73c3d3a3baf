"""fence-peer exit codes as DRBD reads them: who is outdated, and whether writes may go on."""

from __future__ import annotations

import pytest

from vigil.replication.fencing import WriteFreeze, fence_outcome


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


def test_a_failed_fence_keeps_its_freeze_with_the_handlers_reason():
    freeze = WriteFreeze()
    token = freeze.freeze("fencing the peer")
    assert freeze.settle(token, fence_outcome(1, True))
    assert freeze.frozen and "exit 1" in (freeze.reason or "")


def test_a_resolved_fence_thaws_its_own_freeze():
    freeze = WriteFreeze()
    token = freeze.freeze("fencing the peer")
    assert freeze.settle(token, fence_outcome(7, True))
    assert not freeze.frozen and freeze.reason is None


def test_a_fence_that_ends_after_the_peer_came_back_does_not_freeze_again():
    """The link flaps: the peer is back (thaw) before the first handler fails."""
    freeze = WriteFreeze()
    token = freeze.freeze("fencing the peer")
    assert freeze.thaw()
    assert not freeze.settle(token, fence_outcome(1, True))
    assert not freeze.frozen and freeze.reason is None


def test_a_stale_fence_cannot_thaw_the_freeze_of_a_newer_one():
    freeze = WriteFreeze()
    first = freeze.freeze("fencing the peer")
    freeze.thaw()
    second = freeze.freeze("fencing the peer")
    assert not freeze.settle(first, fence_outcome(7, True))
    assert freeze.frozen
    assert freeze.settle(second, fence_outcome(1, True))
    assert freeze.frozen and "exit 1" in (freeze.reason or "")


def test_resume_io_thaws_whoever_froze_and_says_so():
    freeze = WriteFreeze()
    assert not freeze.thaw()
    token = freeze.freeze("fencing the peer")
    freeze.settle(token, fence_outcome(1, True))
    assert freeze.thaw() and not freeze.frozen
