"""The TURN server's rules as pure code: credentials, message checks, framing, allocations, where relaying may go."""

from __future__ import annotations

import struct

import pytest
from aioice import stun
from hypothesis import given, settings
from hypothesis import strategies as st

from videoroomd.config.schema import IceServerUrl, RoomConfig, TurnConfig, TurnServer
from videoroomd.turn import channeldata
from videoroomd.turn.allocations import (
    CHANNEL_LIFETIME, MAX_PERMISSIONS, PERMISSION_LIFETIME, Allocation, AllocationTable, ByteBudget, QuotaError,
)
from videoroomd.turn.clients import IssuedServer, client_turn_servers
from videoroomd.turn.credentials import expiry_of, key_for, long_term_key, rest_password, rest_username, user_of
from videoroomd.turn.framing import StreamFramer
from videoroomd.turn.messages import Malformed, decode, encode, error, response
from videoroomd.turn.peers import MediaAddresses


# -- credentials ---------------------------------------------------------------------------
def test_rest_credentials_match_an_independent_hmac():
    # openssl dgst -sha1 -hmac the-shared-secret -binary | base64, and md5sum: computed outside Python.
    assert rest_username("peer-1", 1699999000.5, 1000) == "1700000000:peer-1"
    assert rest_password("the-shared-secret", "1700000000:peer-1") == "BjjWPnvt/ypcUxBR7YSNgANhD4U="
    assert long_term_key("1700000000:peer-1", "videoroomd", "abc").hex() == "c264e8ec9235bd478417a379183f9a8b"


def test_only_unexpired_rest_usernames_get_a_key():
    assert expiry_of("1700000000:peer-1") == 1700000000 and expiry_of("1700000000") == 1700000000
    assert user_of("1700000000:peer-1") == user_of("1800000000:peer-1") == "peer-1" and user_of("alice") == "alice"
    for bad in ("alice", "", ":peer", "17e9:peer", "x" * 600, "1" * 13 + ":p"):
        assert expiry_of(bad) is None, bad
        assert key_for(bad, "r", "secret", 0) is None
    assert key_for("1700000000:p", "r", "secret", 1700000000) is None  # expired at that very second
    assert key_for("1700000000:p", "r", "secret", 1699999999) == long_term_key(
        "1700000000:p", "r", rest_password("secret", "1700000000:p"))


def test_client_entries_keep_fixed_credentials_and_make_per_join_ones_from_a_secret():
    room = RoomConfig(name="r", turn_servers=(
        TurnServer((IceServerUrl("turn", "fixed.example.org", 3478, "udp"),), "u", "p"),
        TurnServer((IceServerUrl("turns", "coturn.example.org", 5349, "tcp"),), "", "", "coturn-secret"),
    ))
    builtin = (IssuedServer("192.0.2.1", 3478, "udp", "our-secret"), IssuedServer("192.0.2.1", 3478, "tcp", "our-secret"))
    entries = client_turn_servers(room, "peer-7", 1000.0, builtin=builtin, lifetime=600)
    assert [(e["serverAddr"], e["serverPort"], e["transport"]) for e in entries] == [
        ("192.0.2.1", 3478, "udp"), ("192.0.2.1", 3478, "tcp"), ("coturn.example.org", 5349, "tls"),
        ("fixed.example.org", 3478, "udp")]
    assert {e["username"] for e in entries[:3]} == {"1600:peer-7"}
    assert entries[0]["password"] == rest_password("our-secret", "1600:peer-7")
    assert entries[2]["password"] == rest_password("coturn-secret", "1600:peer-7")
    assert (entries[3]["username"], entries[3]["password"]) == ("u", "p")
    assert client_turn_servers(RoomConfig(name="r"), "p", 0) == []


# -- messages ------------------------------------------------------------------------------
def signed_request(key: bytes) -> bytes:
    request = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST, attributes={
        "REQUESTED-TRANSPORT": 17 << 24, "USERNAME": "1:p", "REALM": "r", "NONCE": b"n"})
    request.add_message_integrity(key)
    return bytes(request)


def test_decode_checks_what_aioice_leaves_out():
    good = signed_request(b"k")
    decoded = decode(good)
    assert decoded.message.check_message_integrity(b"k") and not decoded.message.check_message_integrity(b"other")
    bad_cookie = good[:4] + b"\x00\x00\x00\x00" + good[8:]
    past_end = good[:2] + struct.pack("!H", len(good) - 20) + good[4:20] + b"\x00\x06\x01\x00" + good[24:]
    cases = {"no cookie": bad_cookie, "attribute past the end": past_end, "cut": good[:-4], "empty": b"",
             "odd length": good + b"\x00", "fingerprint": good[:-1] + bytes([good[-1] ^ 1])}
    for why, data in cases.items():
        with pytest.raises(Malformed):
            decode(data)
        assert why
    many = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    body = bytes(many) + struct.pack("!HH", 0x8022, 0) * 40
    with pytest.raises(Malformed, match="attributes"):
        decode(stun.set_body_length(body, len(body) - 20))


def test_decode_lists_every_peer_address_and_unknown_required_attributes():
    message = stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST)
    tid = message.transaction_id
    body = bytes(message)
    for peer in (("192.0.2.1", 1), ("192.0.2.2", 2)):
        value = stun.pack_xor_address(peer, tid)
        body += struct.pack("!HH", 0x0012, len(value)) + value
    body += struct.pack("!HH", 0x0031, 0) + struct.pack("!HH", 0xC001, 0)  # required unknown, optional unknown
    decoded = decode(stun.set_body_length(body, len(body) - 20))
    assert decoded.peers == (("192.0.2.1", 1), ("192.0.2.2", 2))
    assert decoded.unknown == (0x0031,)


def test_encoded_responses_carry_integrity_and_fingerprint():
    request = decode(signed_request(b"k")).message
    data = encode(response(request, {"LIFETIME": 600}), b"k", ((0x000A, b"\x00\x31"),))
    parsed = stun.parse_message(data)  # checks FINGERPRINT
    assert parsed.check_message_integrity(b"k") and parsed.attributes["LIFETIME"] == 600
    assert b"\x00\x0a\x00\x02\x00\x31" in data
    refused = stun.parse_message(encode(error(request, 403, "not there")))
    assert refused.attributes["ERROR-CODE"] == (403, "not there") and "MESSAGE-INTEGRITY" not in refused.attributes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_refuses_junk_with_malformed_only(data):
    for candidate in (data, struct.pack("!HHI", 0x0003, len(data) & ~3, stun.COOKIE) + bytes(12) + data[: len(data) & ~3]):
        try:
            decode(candidate)
        except Malformed:
            pass


# -- ChannelData and stream framing ------------------------------------------------------
def test_channel_data_round_trip_padding_and_refusals():
    assert channeldata.parse(channeldata.build(0x4001, b"abc")) == (0x4001, b"abc")
    padded = channeldata.build(0x4001, b"abc", pad=True)
    assert len(padded) == 8 and channeldata.parse(padded) == (0x4001, b"abc")
    for bad in (b"\x40\x01\x00", b"\x40\x01\x00\x09abc", b"\x7f\xff\x00\x00", b"\x3f\xff\x00\x00"):
        with pytest.raises(Malformed):
            channeldata.parse(bad)
    with pytest.raises(ValueError):
        channeldata.build(0x3FFF, b"")


def test_stream_framer_cuts_messages_and_channel_data_out_of_any_chunks():
    stun_frame = signed_request(b"k")
    channel_frame = channeldata.build(0x4002, b"hello", pad=True)
    stream = stun_frame + channel_frame + stun_frame
    for size in (1, 3, 7, len(stream)):
        framer = StreamFramer()
        frames = []
        for i in range(0, len(stream), size):
            frames += framer.feed(stream[i:i + size])
        assert frames == [stun_frame, channel_frame, stun_frame], size
    for junk in (b"\x80GET / HTTP/1.1\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"\x7f\xff\x00\x04abcd"):
        with pytest.raises(Malformed):
            StreamFramer().feed(junk)
    with pytest.raises(Malformed):
        StreamFramer().feed(b"\x00\x01\xff\xf0")  # a STUN message far larger than any request


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100), max_size=10))
def test_stream_framer_never_buffers_much_nor_fails_otherwise(chunks):
    framer = StreamFramer()
    try:
        for chunk in chunks:
            framer.feed(chunk)
            assert len(framer._buffer) <= 4 + 0xFFFF + 3
    except Malformed:
        pass


# -- allocations ---------------------------------------------------------------------------
def test_quotas_per_user_and_in_total():
    table = AllocationTable(max_total=3, max_per_user=2, max_lifetime=3600)
    for i, user in enumerate(("a", "a", "b")):
        table.check_quota(user)
        table.add(Allocation(i, user, ("192.0.2.1", 5000 + i), 100.0))
    with pytest.raises(QuotaError, match="per user"):
        table.check_quota("a")
    with pytest.raises(QuotaError) as caught:
        table.check_quota("c")
    assert caught.value.code == 486
    table.remove(0)
    table.check_quota("a")
    assert [a.key for a in table.expired(100.0)] == [1, 2] and len(table) == 0 and not table.has_user("a")


def test_the_default_quotas_relay_a_class_behind_one_address_each_on_three_urls_and_ten_interfaces():
    """A browser asks one allocation per network interface and TURN URL (UDP, TCP, TLS): thirty people
    behind one school's address, each on a one-network laptop, all get theirs; so does one person whose
    laptop has ten interfaces; the defaults still bound one address and one person."""
    defaults = TurnConfig()
    table = AllocationTable(max_total=defaults.max_allocations, max_per_user=defaults.max_allocations_per_user,
                            max_lifetime=defaults.max_lifetime, max_per_source=defaults.max_allocations_per_address)
    school, key = "198.51.100.7", 0
    for pupil in range(30):
        for url in range(3):
            assert table.check_quota(f"pupil{pupil}", school) is None
            table.add(Allocation(key, f"pupil{pupil}", ("192.0.2.1", 5000 + key), 100.0, source=school))
            key += 1
    for interface in range(10):
        for url in range(3):
            assert table.check_quota("laptop", "203.0.113.5") is None
            table.add(Allocation(key, "laptop", ("192.0.2.1", 5000 + key), 100.0, source="203.0.113.5"))
            key += 1
    with pytest.raises(QuotaError, match="per user"):
        table.check_quota("laptop", "203.0.113.5")
    for extra in range(defaults.max_allocations_per_address - 90):
        table.add(Allocation(key, f"late{extra}", ("192.0.2.1", 5000 + key), 100.0, source=school))
        key += 1
    with pytest.raises(QuotaError, match="per address"):
        table.check_quota("one-more", school)


def test_lifetimes_are_clamped():
    table = AllocationTable(max_total=1, max_per_user=1, max_lifetime=1200)
    assert table.lifetime(None) == 600 and table.lifetime(99999) == 1200 and table.lifetime(0) == 0 and table.lifetime(30) == 30


def test_permissions_and_channels_expire_and_bindings_stay_one_to_one():
    allocation = Allocation("k", "u", ("192.0.2.1", 5000), 1000.0)
    assert allocation.permit("192.0.2.9", 0)
    assert allocation.permitted("192.0.2.9", PERMISSION_LIFETIME - 1) and not allocation.permitted("192.0.2.9", PERMISSION_LIFETIME)
    assert allocation.bind(0x4000, ("192.0.2.9", 1), 0) is None
    assert "another peer" in allocation.bind(0x4000, ("192.0.2.9", 2), 0)
    assert "bound to channel" in allocation.bind(0x4001, ("192.0.2.9", 1), 0)
    assert allocation.bind(0x4000, ("192.0.2.9", 1), 10) is None  # a refresh
    assert allocation.peer_of(0x4000, 10) == ("192.0.2.9", 1) and allocation.channel_for(("192.0.2.9", 1), 10) == 0x4000
    assert allocation.peer_of(0x4000, 10 + CHANNEL_LIFETIME) is None
    assert allocation.bind(0x4001, ("192.0.2.9", 1), 10 + CHANNEL_LIFETIME) is None  # free again once expired
    crowded = Allocation("k", "u", ("192.0.2.1", 5000), 1000.0)
    assert all(crowded.permit(f"10.0.0.{i}", 0) for i in range(MAX_PERMISSIONS))
    assert not crowded.permit("10.0.1.1", 0)


def test_byte_budget_refills_per_second():
    budget = ByteBudget(1000)
    assert budget.spend("u", 600, 0) and not budget.spend("u", 600, 0) and budget.spend("v", 600, 0)
    assert budget.spend("u", 600, 0.3)
    assert ByteBudget(0).spend("u", 10**9, 0)


# -- where relaying may go -------------------------------------------------------------------
def test_media_addresses_are_exact_sockets_on_our_own_addresses():
    media = MediaAddresses(["127.0.0.1", "2001:db8::1"])
    media.add("127.0.0.1", 5000)
    media.add("::", 6000)
    assert media.contains("127.0.0.1", 5000) and media.contains("::ffff:127.0.0.1", 5000)
    assert not media.contains("127.0.0.1", 5001) and not media.contains("127.0.0.2", 5000)
    assert media.contains("2001:db8::1", 6000) and not media.contains("127.0.0.1", 6000)
    assert not media.contains("not an address", 5000)
    media.add("127.0.0.1", 5000)
    media.remove("127.0.0.1", 5000)
    assert media.contains("127.0.0.1", 5000)  # a second socket on the same port is still open
    media.remove("127.0.0.1", 5000)
    media.remove("127.0.0.1", 5000)
    assert not media.contains("127.0.0.1", 5000)
    media.add("10.0.0.1", 7000)  # not one of our addresses: registering it grants nothing
    assert not media.contains("10.0.0.1", 7000)


def test_without_configured_addresses_only_the_hosts_own_addresses_count():
    media = MediaAddresses.for_ice(())
    assert "127.0.0.2" not in media.hosts and "8.8.8.8" not in media.hosts
    assert MediaAddresses.for_ice(("192.0.2.5",)).hosts == {"192.0.2.5"}
