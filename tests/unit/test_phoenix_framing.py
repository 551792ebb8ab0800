"""Phoenix v2 frames and relay messages as pure data."""

from __future__ import annotations

import json

import pytest

from videoroomd.signalling import phoenix
from videoroomd.signalling import relay_protocol as rp


def test_decode_and_encode_round_trip():
    frame = phoenix.decode('["3","4","room:lobby","phx_join",{"displayName":"Ann"}]')
    assert frame == phoenix.Frame("3", "4", "room:lobby", "phx_join", {"displayName": "Ann"})
    assert json.loads(frame.encode()) == ["3", "4", "room:lobby", "phx_join", {"displayName": "Ann"}]


def test_heartbeat_reply_keeps_the_ref_and_null_join_ref():
    frame = phoenix.decode('[null,"7","phoenix","heartbeat",{}]')
    assert json.loads(phoenix.reply(frame, "ok").encode()) == [None, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON: unexpected end of data at column 2"),
    ('{"topic": "x"}', "expected [join_ref, ref, topic, event, payload]"),
    ('[null, "1", "room:a", "phx_join"]', "expected [join_ref, ref, topic, event, payload]"),
    ('[null, "1", "", "phx_join", {}]', "topic must be a non-empty string"),
    ('[null, "1", "room:a", 5, {}]', "event must be a non-empty string"),
    ('[{}, "1", "room:a", "phx_join", {}]', "join_ref must be a string or null"),
])
def test_malformed_frames_say_what_is_wrong(text, message):
    with pytest.raises(phoenix.ProtocolError) as caught:
        phoenix.decode(text)
    assert str(caught.value) == message


def test_binary_frames_are_refused():
    with pytest.raises(phoenix.ProtocolError, match="binary frames are not accepted"):
        phoenix.decode(b"[]")


def test_room_topic():
    assert phoenix.room_name("room:lobby") == "lobby"
    assert phoenix.room_name("room:") is None and phoenix.room_name("chat:x") is None


def test_relay_message_checks():
    assert rp.parse('{"event":"offer","data":{"sdp":"x"},"to":["a","b","a"]}') == rp.Outgoing("offer", {"sdp": "x"}, ("a", "b"))
    assert rp.parse('{"event":"hi","to":"all"}').to is None
    for text, details in [
        ("nope", "not JSON: invalid literal, expected 'null' at column 1"),
        ("[1]", "expected a JSON object {event, data, to}"),
        ('{"to":"all"}', "event must be a non-empty string"),
        ('{"event":"x","to":"everyone"}', 'to must be "all" or a list of peer ids'),
        ('{"event":"x","to":[1]}', 'to must be "all" or a list of peer ids'),
    ]:
        with pytest.raises(rp.InvalidMessage) as caught:
            rp.parse(text)
        assert str(caught.value) == details


def test_relay_server_messages():
    assert json.loads(rp.authenticated("p1")) == {"event": "authenticated", "data": {"peer_id": "p1"}, "from": None, "to": ["p1"]}
    assert json.loads(rp.joined("p2")) == {"event": "joined", "data": {"peer_id": "p2"}, "from": None, "to": "all"}
    assert json.loads(rp.error("p1", rp.ROOM_CLOSED, "bye"))["data"] == {"description": "Room closed", "details": "bye"}
