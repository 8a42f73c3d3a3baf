"""Schedulers: distribution follows weights; sh/dh/mh are stable; mh moves only a
removed server's flows; connection-count schedulers follow the load."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.lvs.schedulers import SCHEDULERS, Dest, Flow, Load, make_scheduler
from vigil.lvs.schedulers.slots import fill_slots, shares
from vigil.lvs.table import RealKey

A, B, C, D = (RealKey(f"198.51.100.{i}", 80) for i in (1, 2, 3, 4))


def flows(n: int, seed: int = 1) -> list[Flow]:
    rng = random.Random(seed)
    return [
        Flow(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
             rng.randrange(1024, 65535), "198.51.100.100", 80)
        for _ in range(n)
    ]


def counts(name: str, dests: list[Dest], n: int = 9000) -> Counter:
    scheduler = make_scheduler(name)
    scheduler.update(dests)
    return Counter(scheduler.pick(flow) for flow in flows(n))


def test_every_ipvs_scheduler_this_issue_names_is_registered():
    assert set(SCHEDULERS) == {"rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh"}
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("lblc")


def test_rr_cycles_in_order_and_skips_weight_zero():
    rr = make_scheduler("rr")
    rr.update([Dest(A), Dest(B, weight=0), Dest(C)])
    picks = [rr.pick(f) for f in flows(6)]
    assert picks == [A, C, A, C, A, C]


def test_rr_keeps_its_place_when_the_list_changes():
    rr = make_scheduler("rr")
    rr.update([Dest(A), Dest(B), Dest(C)])
    assert [rr.pick(f) for f in flows(2)] == [A, B]
    rr.update([Dest(A), Dest(C)])  # B removed: next after B is C
    assert rr.pick(flows(1)[0]) == C


def test_wrr_interleaves_by_weight_like_ipvs():
    wrr = make_scheduler("wrr")
    wrr.update([Dest(A, 4), Dest(B, 3), Dest(C, 2)])
    sequence = "".join("ABC"[[A, B, C].index(wrr.pick(f))] for f in flows(9))
    assert sequence == "AABABCABC"


@pytest.mark.parametrize("name", ["wrr", "sh", "dh", "mh"])
def test_distribution_follows_weights(name):
    dests = [Dest(A, 5), Dest(B, 3), Dest(C, 1), Dest(D, 0)]
    if name == "dh":  # dh hashes the destination address: vary it
        scheduler = make_scheduler(name)
        scheduler.update(dests)
        got = Counter(
            scheduler.pick(Flow("10.0.0.1", 1, f"10.1.{i // 250}.{i % 250}", 80))
            for i in range(9000)
        )
    else:
        got = counts(name, dests)
    assert got[D] == 0
    total = sum(got.values())
    for key, weight in ((A, 5), (B, 3), (C, 1)):
        assert abs(got[key] / total - weight / 9) < 0.03, (key, got)


@pytest.mark.parametrize("name", ["sh", "dh", "mh"])
def test_hash_schedulers_are_stable_across_instances(name):
    dests = [Dest(A), Dest(B), Dest(C)]
    one, two = make_scheduler(name), make_scheduler(name)
    one.update(dests)
    two.update(list(reversed(dests)))
    sample = flows(500)
    assert [one.pick(f) for f in sample] == [two.pick(f) for f in sample]
    assert [one.pick(f) for f in sample] == [one.pick(f) for f in sample]


def test_sh_ignores_the_source_port_unless_sh_port():
    sh = make_scheduler("sh")
    sh.update([Dest(A), Dest(B), Dest(C), Dest(D)])
    picks = {sh.pick(Flow("10.0.0.7", port, "198.51.100.100", 80)) for port in range(1000, 1100)}
    assert len(picks) == 1
    sh_port = make_scheduler("sh", ["sh-port"])
    sh_port.update([Dest(A), Dest(B), Dest(C), Dest(D)])
    picks = {sh_port.pick(Flow("10.0.0.7", p, "198.51.100.100", 80)) for p in range(1000, 1100)}
    assert len(picks) == 4


@pytest.mark.parametrize("name", ["mh", "sh"])
def test_removing_a_server_moves_only_its_own_flows(name):
    scheduler = make_scheduler(name)
    scheduler.update([Dest(A), Dest(B), Dest(C), Dest(D)])
    sample = flows(4000)
    before = [scheduler.pick(f) for f in sample]
    scheduler.update([Dest(A), Dest(B), Dest(D)])  # C removed
    after = [scheduler.pick(f) for f in sample]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert moved and all(b == C for b, _ in moved)
    assert {a for _, a in moved} == {A, B, D}  # C's flows spread over the others


def test_mh_adding_a_server_takes_only_its_share():
    mh = make_scheduler("mh")
    mh.update([Dest(A), Dest(B), Dest(C)])
    sample = flows(4000)
    before = [mh.pick(f) for f in sample]
    mh.update([Dest(A), Dest(B), Dest(C), Dest(D)])
    after = [mh.pick(f) for f in sample]
    moved = [a for b, a in zip(before, after, strict=True) if b != a]
    assert set(moved) == {D}
    assert abs(len(moved) / len(sample) - 0.25) < 0.04


def test_mh_fallback_skips_an_overloaded_owner():
    mh = make_scheduler("mh", ["mh-fallback"])
    mh.update([Dest(A, upper=1), Dest(B)])
    load = {A: Load(active=1)}
    assert {mh.pick(f, load) for f in flows(200)} == {B}
    strict = make_scheduler("mh")
    strict.update([Dest(A, upper=1), Dest(B)])
    assert None in {strict.pick(f, load) for f in flows(200)}


def test_lc_wlc_sed_nq_follow_the_load():
    load = {A: Load(active=3), B: Load(active=1, inactive=50), C: Load(active=2)}
    dests = [Dest(A, 4), Dest(B, 1), Dest(C, 1)]
    picks = {}
    for name in ("lc", "wlc", "sed", "nq"):
        scheduler = make_scheduler(name)
        scheduler.update(dests)
        picks[name] = scheduler.pick(flows(1)[0], load)
    assert picks["lc"] == B  # 1*256+50 < 2*256 < 3*256
    assert picks["wlc"] == A  # 768/4=192 < 306/1
    assert picks["sed"] == A  # (3+1)/4=1 < (1+1)/1
    nq = make_scheduler("nq")
    nq.update([*dests, Dest(D, 1)])
    assert nq.pick(flows(1)[0], load) == D  # idle server first


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_nobody_usable_gives_none(name):
    scheduler = make_scheduler(name)
    scheduler.update([Dest(A, 0), Dest(B, 0)])
    assert scheduler.pick(flows(1)[0]) is None
    scheduler.update([])
    assert scheduler.pick(flows(1)[0]) is None


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.integers(1, 40), st.integers(0, 20), min_size=1, max_size=12),
    st.dictionaries(st.integers(1, 40), st.integers(0, 20), min_size=1, max_size=12),
)
def test_slot_tables_are_full_exact_and_minimally_changed(old_weights, new_weights):
    size = 251
    before = fill_slots(old_weights, size)
    after = fill_slots(new_weights, size, previous=before)
    if not any(w > 0 for w in new_weights.values()):
        assert after == ()
        return
    assert len(after) == size and None not in after  # no slot ever empty
    assert Counter(after) == Counter(shares(new_weights, size))  # weights exact
    if before:
        # A slot changes owner only if its old owner lost share or left.
        old_quota, new_quota = Counter(before), shares(new_weights, size)
        moved = sum(1 for b, a in zip(before, after, strict=True) if a != b)
        must_move = sum(max(0, old_quota[k] - new_quota.get(k, 0)) for k in old_quota)
        assert moved == must_move


def test_the_check_layer_knows_the_userspace_schedulers():
    from vigil.cluster.loader import USERSPACE_SCHEDULERS
    from vigil.lvs.schedulers import SCHEDULERS
    assert set(SCHEDULERS) == USERSPACE_SCHEDULERS
