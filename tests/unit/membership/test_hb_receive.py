"""Receive rules: sequence numbers, generations, replays, duplicates, retransmission, ACKs."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from vigil.membership.history import MAX_REXMIT_BATCH, TransmitHistory
from vigil.membership.messages import (
    Ack,
    Envelope,
    IpRequestResp,
    NakRexmit,
    Rexmit,
    Status,
)
from vigil.membership.receive import FLOWCONTROL_LIMIT, Event, ReceiveRules, Verdict


def status(seq: int, hg: int = 5, src: str = "n2") -> Status:
    return Status(env=Envelope(src=src, hg=hg, ts=1, seq=seq), status="active")


def rules(trigger: int = 0) -> ReceiveRules:
    core = ReceiveRules("n1", max_rexmit_delay=0.25, rng=random.Random(1))
    core.track("n2").ack_trigger = trigger
    return core


def test_in_order_packets_are_accepted_and_the_first_is_first_contact():
    core = rules()
    first = core.classify(status(1), 0.0)
    assert first.verdict is Verdict.ACCEPT and first.events == (Event.FIRST_CONTACT,)
    assert core.classify(status(2), 0.1).verdict is Verdict.ACCEPT
    assert core.counters["accepted"] == 2


def test_the_same_packet_over_a_second_medium_is_a_duplicate():
    core = rules()
    core.classify(status(1), 0.0)
    assert core.classify(status(1), 0.0).verdict is Verdict.DUPLICATE
    assert core.counters["duplicate"] == 1


def test_an_older_generation_is_a_replay_and_dropped():
    core = rules()
    core.classify(status(40, hg=6), 0.0)
    dropped = core.classify(status(41, hg=5), 0.1)
    assert dropped.verdict is Verdict.DROP and "replay" in dropped.reason
    assert core.counters["replayed"] == 1


def test_an_old_sequence_number_within_the_generation_is_dropped():
    core = rules()
    for seq in range(1, 101):
        core.classify(status(seq), 0.0)
    assert core.classify(status(3), 0.1).verdict is Verdict.DROP
    assert core.counters["stale"] == 1


def test_a_recent_packet_arriving_late_over_another_medium_is_a_duplicate():
    core = rules()
    for seq in (1, 2, 4, 3):  # 4 came over the fast link, 3 over the slow one
        core.classify(status(seq), 0.0)
    assert core.classify(status(2), 0.0).verdict is Verdict.DUPLICATE
    assert core.counters["stale"] == 0


def test_a_higher_generation_is_a_restart_and_tracking_starts_over():
    core = rules()
    for seq in range(1, 30):
        core.classify(status(seq), 0.0)
    restarted = core.classify(status(1, hg=6), 1.0)
    assert restarted.verdict is Verdict.ACCEPT and Event.RESTART in restarted.events
    assert core.classify(status(2, hg=6), 1.1).verdict is Verdict.ACCEPT


def test_a_gap_is_accepted_recorded_and_asked_for_after_a_random_delay():
    core = rules()
    core.classify(status(1), 0.0)
    gap = core.classify(status(5), 1.0)
    assert gap.verdict is Verdict.ACCEPT and gap.lost == (2, 4)
    assert core.missing_count("n2") == 3
    assert core.due_requests(1.0) == []  # not before the random delay (>= 50 ms)
    due = core.next_deadline()
    assert 1.05 <= due <= 1.25
    requests = core.due_requests(1.25)
    assert requests == [("n2", 2, 4)]  # one request for a contiguous range
    assert core.next_deadline() == 1.5  # and again after max_rexmit_delay if still missing
    assert core.classify(status(3), 1.3).verdict is Verdict.ACCEPT
    assert core.due_requests(1.5) == [("n2", 2, 2), ("n2", 4, 4)]


def test_a_nak_ends_the_requests_for_that_packet():
    core = rules()
    core.classify(status(1), 0.0)
    core.classify(status(3), 0.0)
    nak = NakRexmit(env=Envelope(src="n2", hg=5, ts=1), firstseq=2, dest="n1")
    assert core.classify(nak, 0.1).verdict is Verdict.ACCEPT
    assert core.missing_count("n2") == 0 and core.next_deadline() is None


def test_a_huge_gap_is_not_asked_for():
    core = rules()
    core.classify(status(1), 0.0)
    assert core.classify(status(FLOWCONTROL_LIMIT + 10), 0.1).verdict is Verdict.ACCEPT
    assert core.missing_count("n2") == 0


def test_unsequenced_packets_are_kept_only_for_us_or_everyone():
    core = rules()
    env = Envelope(src="n2", hg=5, ts=1)
    assert core.classify(Ack(env=env, dest="n1", ackseq=9), 0).verdict is Verdict.ACCEPT
    assert core.classify(Ack(env=env, dest="n3", ackseq=9), 0).verdict is Verdict.DROP


def test_sequenced_packets_for_another_node_still_advance_the_sequence():
    core = rules()
    core.classify(status(1), 0)
    elsewhere = IpRequestResp(env=Envelope(src="n2", hg=5, ts=1, seq=2), dest="n3",
                              ipaddr="IPaddr::198.51.100.100")
    assert core.classify(elsewhere, 0).verdict is Verdict.DROP
    assert core.classify(status(3), 0).verdict is Verdict.ACCEPT
    assert core.missing_count("n2") == 0


def test_after_death_a_return_in_the_same_generation_is_a_healed_partition():
    core = rules()
    for seq in range(1, 11):
        core.classify(status(seq), 0.0)
    core.classify(status(12), 0.1)  # 11 missing
    core.node_dead("n2")
    assert core.next_deadline() is None  # no requests to a dead node
    replay = core.classify(status(10), 5.0)
    assert replay.verdict is Verdict.DROP  # the old packets stay old
    back = core.classify(status(300), 5.1)
    assert back.verdict is Verdict.ACCEPT and back.events == (Event.PARTITION_HEALED,)
    assert core.missing_count("n2") == 0  # what it said during the partition is not asked for
    assert core.classify(status(301), 5.2).verdict is Verdict.ACCEPT


def test_acks_go_out_at_every_tenth_contiguous_packet_at_the_nodes_offset():
    core = rules(trigger=3)
    acks = [core.classify(status(seq), 0).ack for seq in range(1, 25)]
    assert [a for a in acks if a is not None] == [3, 13, 23]


def test_an_ack_waits_for_missing_packets():
    core = rules(trigger=0)
    for seq in [*range(1, 9), 11]:
        assert core.classify(status(seq), 0).ack is None  # 9 and 10 missing
    assert core.classify(status(10), 0).ack is None
    assert core.classify(status(9), 0).ack == 10


@given(st.lists(st.integers(1, 60), max_size=80))
def test_every_number_is_accepted_at_most_once_whatever_the_order(order):
    core = rules()
    accepted = []
    for seq in order:
        if core.classify(status(seq), 0).verdict is Verdict.ACCEPT:
            accepted.append(seq)
    assert len(accepted) == len(set(accepted))


# -- transmit history -----------------------------------------------------------------------

def history_with(count: int, size: int = 500) -> TransmitHistory:
    history = TransmitHistory(max_rexmit_delay=0.25, size=size)
    for seq in range(1, count + 1):
        history.record(seq, b"packet %d" % seq)
    return history


def test_rexmit_request_is_answered_with_the_same_bytes():
    answer = history_with(20).answer("n2", 5, 7, now=1.0)
    assert answer.resend == (b"packet 5", b"packet 6", b"packet 7") and answer.nak == ()


def test_a_packet_is_not_resent_twice_within_the_rexmit_delay():
    history = history_with(20)
    history.answer("n2", 5, 5, now=1.0)
    assert history.answer("n3", 5, 5, now=1.1).resend == ()
    assert history.answer("n3", 5, 5, now=1.25).resend == (b"packet 5",)


def test_packets_gone_from_the_history_are_naked_and_acked_ones_skipped():
    history = history_with(30, size=10)
    answer = history.answer("n2", 19, 22, now=0)
    assert answer.nak == (19, 20) and answer.resend == (b"packet 21", b"packet 22")
    history.ack("n2", 25)
    assert history.answer("n2", 24, 26, now=5).resend == (b"packet 26",)


def test_a_request_never_makes_more_than_a_batch_of_work():
    history = history_with(500)
    answer = history.answer("n2", 1, 10**9, now=0)
    assert len(answer.resend) == MAX_REXMIT_BATCH


def test_rexmit_message_uses_decimal_numbers_like_heartbeat():
    message = Rexmit(env=Envelope(src="n1", hg=1, ts=1), dest="n2", firstseq=26, lastseq=31)
    fields = {f.name: f.value for f in message.to_message()}
    assert fields["firstseq"] == b"26" and fields["lastseq"] == b"31"
