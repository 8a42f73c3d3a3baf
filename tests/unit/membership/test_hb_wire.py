"""Heartbeat 3's wire format: golden packets from the real daemon, round trips, fuzzing."""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.membership import messages
from vigil.membership.auth import METHODS, AuthError, AuthKeys, crc_digest, sign, verify
from vigil.membership.codec import PacketCodec
from vigil.membership.messages import Ack, Envelope, Resources, Status
from vigil.membership.pcap import read_pcap
from vigil.membership.wire import (
    Field,
    FieldType,
    Message,
    WireError,
    decode_classic,
    decode_netstring,
)

SAMPLES = Path(__file__).resolve().parents[2] / "golden" / "heartbeat"
KEY = "hbr-anchor-secret"
KEYS = AuthKeys.from_pairs(1, {1: ("sha1", KEY)})


def captured() -> list[bytes]:
    return [p.payload for name in ("hb-bcast.pcap", "hb-ucast.pcap")
            for p in read_pcap(SAMPLES / name)]


# -- golden vectors: the 148 packets heartbeat 3.0.6 sent ----------------------------------

def test_every_captured_packet_verifies_with_both_signatures():
    packets = captured()
    assert len(packets) == 148
    for payload in packets:
        checked = verify(payload, KEYS)
        assert checked.trailer_key == 1 and checked.field_key == 1


def test_every_captured_packet_reencodes_byte_for_byte_through_its_typed_form():
    types = collections.Counter()
    for payload in captured():
        typed = messages.decode(verify(payload, KEYS).message)
        types[type(typed).__name__] += 1
        assert typed.extra == ()  # every field of heartbeat's packets is modelled
        assert sign(messages.encode(typed), KEYS) == payload
    assert types == {"Status": 89, "Ack": 23, "Resources": 20, "AskResources": 5,
                     "ReqNodes": 3, "RepNodes": 3, "Starting": 3, "IpRequestResp": 1,
                     "Shutdone": 1}


def test_findings_sample_two_decodes_to_its_documented_fields():
    payload = (b"###\n11:(0)t=status,12:(0)st=active,10:(0)dt=1388,13:(0)protocol=1,"
               b"9:(0)src=n1,27:(1)srcuuid=x\xda\x13\x01\x92\x00O\xa1\x86j\xcf\xd0\xd0\xbb\xd8N,"
               b"9:(0)seq=1a,14:(0)hg=6b09b5b7,14:(0)ts=6b09c60b,"
               b"31:(0)ld=1.07 0.69 0.59 1/95 18548,8:(0)ttl=3,"
               b"50:(0)auth=1 8f6c881519a7bcca42850c8900ca6ee1907834d5,%%%\n"
               b"42:1 737d982000fda9149b7ed638551cee74bf6fa2b3,")
    typed = PacketCodec(KEYS).unpack(payload).message
    assert isinstance(typed, Status)
    assert (typed.status, typed.deadtime_ms, typed.protocol) == ("active", 5000, 1)
    assert typed.env.src == "n1" and typed.env.seq == 0x1A and typed.env.hg == 0x6B09B5B7
    assert typed.env.ttl == 3 and len(typed.env.srcuuid) == 16


def test_ack_and_resource_messages_carry_their_fields():
    by_type = collections.defaultdict(list)
    for payload in captured():
        typed = messages.decode(verify(payload, KEYS).message)
        by_type[type(typed)].append(typed)
    ack = by_type[Ack][0]
    assert ack.env.seq is None and ack.env.ld is None and ack.dest in ("n1", "n2")
    assert {r.rsc_hold for r in by_type[Resources]} >= {"none", "local"}


def test_auth_field_signs_the_classic_text_with_binary_fields_in_base64():
    payload = captured()[0]
    message = decode_netstring(payload).message
    uuid = message.raw("srcuuid")
    text = message.classic_text()
    assert b"(1)srcuuid=" + base64.b64encode(uuid) + b"\n" in text
    assert b"auth=" not in text
    expected = hmac.new(KEY.encode(), text, hashlib.sha1).hexdigest()
    assert message.get("auth") == f"1 {expected}"


# -- signatures ------------------------------------------------------------------------------

def _status(src: str = "n1", seq: int = 1) -> Status:
    return Status(env=Envelope(src=src, hg=7, ts=0x6B09C60B, seq=seq, ttl=3), status="active",
                  deadtime_ms=5000, protocol=1)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_signs_and_verifies(method):
    keys = AuthKeys.from_pairs(3, {3: (method, "s3cret")})
    packet = PacketCodec(keys).pack(_status())
    assert PacketCodec(keys).unpack(packet).message == _status()


def test_any_listed_key_verifies_and_the_auth_key_signs():
    old = AuthKeys.from_pairs(1, {1: ("md5", "old"), 2: ("sha1", "new")})
    new = AuthKeys.from_pairs(2, {1: ("md5", "old"), 2: ("sha1", "new")})
    packet = PacketCodec(old).pack(_status())
    assert b"%%%\n" + b"34:1 " in packet  # md5 hex digest: 32 characters
    assert PacketCodec(new).unpack(packet).verified.trailer_key == 1


def test_unlisted_key_wrong_secret_and_tampering_are_refused():
    packet = PacketCodec(KEYS).pack(_status())
    with pytest.raises(AuthError, match="does not list"):
        PacketCodec(AuthKeys.from_pairs(2, {2: ("sha1", KEY)})).unpack(packet)
    with pytest.raises(AuthError, match="bad sha1 signature"):
        PacketCodec(AuthKeys.from_pairs(1, {1: ("sha1", "other")})).unpack(packet)
    tampered = packet.replace(b"st=active", b"st=dead\x00\x00")
    with pytest.raises(WireError):
        PacketCodec(KEYS).unpack(tampered)
    unsigned = decode_netstring(packet).body
    with pytest.raises(AuthError, match="unsigned"):
        verify(unsigned, KEYS)


def test_auth_field_is_checked_even_when_the_trailer_is_right():
    message = messages.encode(_status())
    forged = message.with_field(Field.text("auth", "1 " + "0" * 40))
    body = forged.netstring_body()
    packet = body + b"%d:%s," % (len(KEYS.token(body)), KEYS.token(body))
    with pytest.raises(AuthError, match="auth field"):
        verify(packet, KEYS)


def test_crc_is_heartbeats_unkeyed_crc32_register():
    # CRC-32/POSIX without the length suffix: the check value of "123456789" is 0x765e7680.
    assert crc_digest(b"", b"123456789") == "765e7680"
    assert crc_digest(b"", b"") == "ffffffff"


# -- classic text ------------------------------------------------------------------------------

def test_classic_form_round_trips_with_binary_fields():
    message = Message([Field.text("t", "ask_resources"), Field.text("rsc_hold", "all"),
                       Field("srcuuid", bytes(range(16)), FieldType.BINARY)])
    assert decode_classic(message.classic()) == message
    assert message.classic().startswith(b">>>\nt=ask_resources\n")


def test_classic_form_refuses_what_it_cannot_carry():
    with pytest.raises(WireError):
        Message([Field.text("info", "two\nlines")]).classic_text()
    with pytest.raises(WireError):
        decode_classic(b">>>\nno-equals-sign\n<<<\n")


# -- properties: symmetric codec, and nothing but WireError from arbitrary bytes -------------

names = st.text(st.characters(blacklist_characters="=\n\0", blacklist_categories=("Cs",)),
                min_size=1, max_size=12)
fields = st.builds(Field, name=names, value=st.binary(max_size=40),
                   type=st.sampled_from(list(FieldType)))
wire_messages = st.lists(fields, max_size=12).map(Message)


@given(wire_messages)
def test_netstring_form_round_trips(message):
    frame = decode_netstring(message.netstring_body())
    assert frame.message == message and frame.trailer is None
    assert frame.encode() == message.netstring_body()


@given(wire_messages, st.sampled_from(sorted(METHODS)), st.integers(0, 15))
def test_signed_messages_round_trip_for_every_method(message, method, number):
    keys = AuthKeys.from_pairs(number, {number: (method, "k")})
    packet = sign(message, keys)
    assert verify(packet, keys).message.without("auth") == message.without("auth")


texts = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                max_size=20)
hexes = st.integers(0, 2**64 - 1)
envelopes = st.builds(Envelope, src=st.text("abcdefgh0123456789.-", min_size=1, max_size=12),
                      hg=hexes, ts=hexes, srcuuid=st.none() | st.binary(min_size=16,
                                                                         max_size=16),
                      seq=st.none() | st.integers(1, 2**63), ld=st.none() | texts,
                      ttl=st.none() | st.integers(0, 255))
typed = st.one_of(
    st.builds(Status, env=envelopes, status=st.sampled_from(["init", "up", "active", "dead"]),
              deadtime_ms=st.none() | st.integers(0, 10**7), protocol=st.none() | st.just(1),
              groups=st.none() | texts, ping=st.none() | st.integers(0, 99)),
    st.builds(Ack, env=envelopes, dest=texts.filter(bool), ackseq=hexes),
    st.builds(Resources, env=envelopes, rsc_hold=st.sampled_from(["none", "local", "all"]),
              isstable=st.none() | st.sampled_from(["0", "1"]), info=st.none() | texts),
    st.builds(messages.Rexmit, env=envelopes, dest=texts.filter(bool),
              firstseq=st.integers(0, 10**9), lastseq=st.integers(0, 10**9)),
)


@given(typed)
def test_typed_messages_round_trip(message):
    if message.sequenced and message.env.seq is None:
        message = message.with_env(seq=1)
    codec = PacketCodec(KEYS)
    assert codec.unpack(codec.pack(message)).message == message


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_wire_errors(data):
    for attempt in (data, b"###\n" + data, b"###\n" + data + b"%%%\n"):
        with contextlib.suppress(WireError):
            PacketCodec(KEYS).unpack(attempt)
        with contextlib.suppress(WireError):
            decode_classic(b">>>\n" + data)


@settings(max_examples=300)
@given(st.data())
def test_mutated_real_packets_raise_only_wire_errors(data):
    packets = captured()
    payload = bytearray(data.draw(st.sampled_from(packets)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    for attempt in (bytes(payload), bytes(payload[:cut])):
        with contextlib.suppress(WireError):
            PacketCodec(KEYS).unpack(attempt)


def test_a_crc_key_listed_beside_sha1_verifies_nothing():
    from vigil.membership.auth import AuthError, AuthKeys, sign, verify
    from vigil.membership.wire import Field, Message

    message = Message([Field.text("t", "shutdone"), Field.text("src", "n2"),
                       Field.text("hg", "5"), Field.text("ts", "1")])
    rotation = AuthKeys.from_pairs(2, {1: ("crc", ""), 2: ("sha1", "secret")})
    forged = sign(message, AuthKeys.from_pairs(1, {1: ("crc", "")}))
    with pytest.raises(AuthError, match="crc-signed"):
        verify(forged, rotation)
    assert verify(sign(message, rotation), rotation).trailer_key == 2
    # where crc is what auth selects, crc is what verifies (heartbeat's semantics)
    crc_only = AuthKeys.from_pairs(1, {1: ("crc", "")})
    assert verify(forged, crc_only).trailer_key == 1
    # md5 listed for a rotation away from it still verifies: it needs the secret too
    md5 = AuthKeys.from_pairs(1, {1: ("md5", "old")})
    both = AuthKeys.from_pairs(2, {1: ("md5", "old"), 2: ("sha1", "secret")})
    assert verify(sign(message, md5), both).trailer_key == 1
