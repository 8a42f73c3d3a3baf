"""The handshake as both nodes see it: the same facts, mirrored, give one consistent plan.

`handshake.decide` is pure, so a pair is simulated by calling it on each side
with the other's facts; hypothesis draws the facts (generations from a small
universe so that histories relate, roles, crash and Inconsistent flags,
bitmap weights, discard requests, every split-brain policy).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.replication.generations import Generations, Sync
from vigil.replication.handshake import Facts, Rules, decide
from vigil.replication.split_brain import Policies

VALUES = (0, 0xA, 0xB, 0xC)
generations = st.builds(Generations, st.sampled_from(VALUES), st.sampled_from(VALUES),
                        st.tuples(st.sampled_from(VALUES), st.sampled_from(VALUES)))
SB0 = ("disconnect", "discard-younger-primary", "discard-older-primary",
       "discard-zero-changes", "discard-least-changes")
SB1 = ("disconnect", "consensus", "violently-as0p", "discard-secondary",
       "call-pri-lost-after-sb")
SB2 = ("disconnect", "violently-as0p", "call-pri-lost-after-sb")


def facts(host: str):
    return st.builds(Facts, st.just(host), generations, st.booleans(), st.booleans(),
                     st.integers(0, 3), st.booleans(), st.sampled_from((0.0, 1.0, 2.0)),
                     st.booleans())


rules = st.builds(lambda p0, p1, p2, two: (Policies(p0, p1, p2), two),
                  st.sampled_from(SB0), st.sampled_from(SB1), st.sampled_from(SB2),
                  st.booleans())


@settings(max_examples=3000, deadline=None)
@given(facts("alice"), facts("bob"), rules)
def test_both_nodes_agree_and_drbds_refusals_hold(alice, bob, policy):
    policies, two_primaries = policy
    a = decide(alice, bob, Rules(policies, True, two_primaries))
    b = decide(bob, alice, Rules(policies, False, two_primaries))
    if a.sync is not None and b.sync is not None:
        assert b.sync == a.sync.mirrored(), (a, b)
    for me, outcome in ((alice, a), (bob, b)):
        sync = outcome.sync
        if sync is None:
            assert outcome.rollback_to is None
            continue
        # only a primary whose disk was attached under it (Inconsistent) is a target
        assert not (me.primary and sync.is_target and not me.inconsistent), \
            "a primary with a consistent disk is never a sync target"
        assert not (me.inconsistent and sync.is_source), "an Inconsistent disk is no source"
        assert sync not in (Sync.SPLIT_BRAIN, Sync.SPLIT_BRAIN_UNRELATED, Sync.UNRELATED,
                            Sync.INCONSISTENT_SOURCE)
        if outcome.rollback_to is not None:
            assert sync is Sync.TARGET_BITMAP
    if alice.primary and bob.primary and not two_primaries:
        assert a.sync is None and b.sync is None


def test_split_brain_with_a_policy_rolls_the_victim_back_and_runs_the_handlers():
    base = Generations(0xA, 0, (0, 0))
    younger = Facts("alice", Generations(0xB, 0xA, (0, 0)), dirty_blocks=3, primary_since=2.0)
    older = Facts("bob", Generations(0xC, 0xA, (0, 0)), dirty_blocks=5, primary_since=1.0)
    assert base.current == younger.generations.bitmap
    rules = Policies(after_sb_0pri="discard-younger-primary")
    mine = decide(younger, older, Rules(rules, True))
    theirs = decide(older, younger, Rules(rules, False))
    assert mine.sync is Sync.TARGET_BITMAP and theirs.sync is Sync.SOURCE_BITMAP
    assert mine.rollback_to == 0xA and theirs.rollback_to is None
    assert mine.handlers == ("initial-split-brain",) and mine.split_brain_note
    stay = decide(younger, older, Rules(Policies(), True))  # disconnect: by hand
    assert stay.sync is None and stay.handlers == ("initial-split-brain", "split-brain")


def test_a_primary_that_would_have_to_discard_its_data_disconnects():
    primary = Facts("alice", Generations(0xB, 0xA, (0, 0)), primary=True, dirty_blocks=1,
                    primary_since=2.0)
    other = Facts("bob", Generations(0xC, 0xA, (0, 0)), dirty_blocks=9, primary_since=1.0)
    outcome = decide(primary, other, Rules(Policies("discard-younger-primary",
                                                    "violently-as0p"), True))
    assert outcome.sync is None and "rr-conflict" in outcome.reason


def test_an_inconsistent_source_stops_connecting():
    fresh = Facts("alice", Generations(0xB, 0xA, (0, 0)), inconsistent=True, dirty_blocks=4)
    behind = Facts("bob", Generations(0xA, 0, (0, 0)))
    outcome = decide(fresh, behind, Rules())
    assert outcome.sync is None and outcome.stop_connecting


def test_a_primary_with_a_disk_attached_under_it_is_the_sync_target():
    """A diskless primary attached its old disk (Inconsistent now): the peer, which
    counted the writes from a new generation meanwhile, resyncs them to it."""
    primary = Facts("alice", Generations(0xA, 0, (0, 0)), primary=True, inconsistent=True,
                    dirty_blocks=0)
    peer = Facts("bob", Generations(0xB, 0xA, (0, 0)), dirty_blocks=3)
    rules = Rules(Policies())
    mine, theirs = decide(primary, peer, rules), decide(peer, primary, rules)
    assert mine.sync is Sync.TARGET_BITMAP and theirs.sync is Sync.SOURCE_BITMAP
    consistent = Facts("alice", Generations(0xA, 0, (0, 0)), primary=True)
    assert decide(consistent, peer, rules).sync is None
    assert "rr-conflict" in decide(consistent, peer, rules).reason
