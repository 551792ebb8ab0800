"""The relaying rules both the daemon's TURN server and a media worker apply, without sockets."""

from __future__ import annotations

import struct

import pytest
from aioice import stun

from videoroomd.turn import channeldata
from videoroomd.turn.allocations import PERMISSION_LIFETIME, Allocation, ByteBudget
from videoroomd.turn.messages import decode
from videoroomd.turn.relay_rules import (
    Dropped, apply_state, from_channel_data, from_send_indication, refusal, state_of, to_client,
)

MEDIA = ("192.0.2.7", 5000)
CHANNEL = 0x4001


def allocation(now: float = 0.0) -> Allocation:
    made = Allocation("key", "user", ("192.0.2.1", 49200), now + 600)
    made.permit(MEDIA[0], now)
    made.bind(CHANNEL, MEDIA, now)
    return made


def anywhere(peer) -> bool:
    return True


def send_indication(*attributes) -> bytes:
    message = stun.Message(stun.Method.SEND, stun.Class.INDICATION)
    for name, value in attributes:
        message.attributes[name] = value
    return bytes(message)


def test_channel_data_reaches_the_peer_bound_to_its_channel():
    assert from_channel_data(allocation(), struct.pack("!HH", CHANNEL, 5) + b"hello", 1.0) == (MEDIA, b"hello")


@pytest.mark.parametrize("data, reason", [
    (struct.pack("!HH", 0x4002, 2) + b"hi", "unbound_channel"),
    (struct.pack("!HH", CHANNEL, 9) + b"short", "malformed"),
])
def test_channel_data_without_a_bound_channel_or_whole_is_dropped(data, reason):
    with pytest.raises(Dropped) as caught:
        from_channel_data(allocation(), data, 1.0)
    assert caught.value.reason == reason


def test_channel_data_on_an_expired_channel_is_dropped():
    with pytest.raises(Dropped, match="unbound_channel"):
        from_channel_data(allocation(), struct.pack("!HH", CHANNEL, 1) + b"x", 601.0)


def test_a_send_indication_names_exactly_one_peer_and_carries_data():
    good = decode(send_indication(("XOR-PEER-ADDRESS", MEDIA), ("DATA", b"media")))
    assert from_send_indication(good) == (MEDIA, b"media")
    for bad in (send_indication(("XOR-PEER-ADDRESS", MEDIA)), send_indication(("DATA", b"media"))):
        with pytest.raises(Dropped, match="malformed"):
            from_send_indication(decode(bad))


def test_data_passes_with_a_live_permission_to_a_reachable_peer_within_the_budget():
    budget = ByteBudget(1000)
    made = allocation()
    assert refusal(made, MEDIA, 600, 1.0, reachable=anywhere, budget=budget) is None
    assert refusal(made, MEDIA, 600, 1.0, reachable=anywhere, budget=budget) == "bandwidth"
    assert refusal(made, ("198.51.100.1", 5000), 1, 1.0, reachable=anywhere, budget=budget) == "no_permission"
    assert refusal(made, MEDIA, 1, PERMISSION_LIFETIME + 1, reachable=anywhere, budget=budget) == "no_permission"
    assert refusal(made, MEDIA, 1, 1.0, reachable=lambda peer: False, budget=budget) == "forbidden_peer"


def test_a_refused_datagram_spends_no_budget():
    budget = ByteBudget(1000)
    made = allocation()
    assert refusal(made, MEDIA, 1000, 1.0, reachable=lambda peer: False, budget=budget) == "forbidden_peer"
    assert refusal(made, MEDIA, 1000, 1.0, reachable=anywhere, budget=budget) is None


def test_the_client_gets_channel_data_on_a_bound_channel_else_a_data_indication():
    made = allocation()
    assert to_client(made, MEDIA, b"abc", 1.0, stream=False) == struct.pack("!HH", CHANNEL, 3) + b"abc"
    assert to_client(made, MEDIA, b"abc", 1.0, stream=True) == channeldata.build(CHANNEL, b"abc", pad=True)
    made.permit("192.0.2.8", 1.0)
    indication = stun.parse_message(to_client(made, ("192.0.2.8", 6000), b"abc", 1.0, stream=False))
    assert indication.message_method == stun.Method.DATA and indication.message_class == stun.Class.INDICATION
    assert indication.attributes["XOR-PEER-ADDRESS"] == ("192.0.2.8", 6000) and indication.attributes["DATA"] == b"abc"


def test_state_crosses_as_seconds_left_and_keeps_only_what_is_live():
    made = allocation(now=0.0)
    made.permit("192.0.2.99", -PERMISSION_LIFETIME)  # expired already at 0
    state = state_of(made, 10.0)
    assert set(state.permissions) == {MEDIA[0]} and state.expires_in == 590.0
    copy = Allocation("key", "user", made.relay, 0.0)
    apply_state(copy, state, 1000.0)  # another process, another clock
    assert copy.expires == 1590.0
    assert copy.permitted(MEDIA[0], 1000.0 + PERMISSION_LIFETIME - 11) and not copy.permitted("192.0.2.99", 1000.0)
    assert copy.peer_of(CHANNEL, 1001.0) == MEDIA and copy.channel_for(MEDIA, 1001.0) == CHANNEL
