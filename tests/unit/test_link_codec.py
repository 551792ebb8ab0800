"""The participant link's messages between nodes: every event survives the trip, and what is not ours is refused."""

from __future__ import annotations

import orjson
import pytest

from videoroomd.rooms.link import ChannelPush, ChatPost, MediaEvent, PeerJoined, PeerLeft, RelaySend, RelayText
from videoroomd.rooms.link_codec import MAX_MESSAGE, VERSION, BadMessage, decode, encode

EVENTS = [MediaEvent('{"type": "join", "data": {"metadata": {"displayName": "Ann"}}}'), ChatPost("hello"),
          RelaySend('{"event": "x"}', ("a", "b")), RelaySend("{}", None), ChannelPush("chat", {"id": "1", "n": [1, 2]}),
          RelayText("{}"), PeerJoined("p1"), PeerLeft("p2")]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_of_the_link_comes_back_as_it_left(event):
    kind, fields = decode(encode("event", link="k1", item=event))
    assert kind == "event" and fields == {"link": "k1", "item": event} and type(fields["item"]) is type(event)


def test_a_join_carries_its_password_and_token_or_none():
    for password, token in (("sesame", "a.b.c"), (None, None)):
        _, fields = decode(encode("join", link="k", origin="node-a", room="lobby", display="Ann", password=password,
                                  kind="rtc", address="10.0.0.1", enter=False, token=token))
        assert fields["password"] == password and fields["token"] == token and fields["enter"] is False


def message(**fields) -> bytes:
    return orjson.dumps({"v": VERSION, "t": "leave", "link": "k", "reason": "left", **fields})


@pytest.mark.parametrize(("raw", "why"), [
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (message(v=2), "unknown version 2"),
    (message(v=None), "unknown version"),
    (message(t="explode"), "unknown message type 'explode'"),
    (orjson.dumps({"v": VERSION, "t": "leave", "link": "k"}), "field 'reason' is missing"),
    (message(reason=7), "field 'reason' must be text"),
    (message(t="chat", req=True, text="x"), "field 'req' must be number"),
    (orjson.dumps({"v": VERSION, "t": "send", "link": "k", "req": 1, "item": {"k": "Room", "data": "x"}}), "unknown event 'Room'"),
    (orjson.dumps({"v": VERSION, "t": "send", "link": "k", "req": 1, "item": {"k": "MediaEvent", "data": 1}}), "must be text"),
    (orjson.dumps({"v": VERSION, "t": "gone", "links": ["a", 1]}), "field 'links' must be texts"),
    (b"[" * 100 + b"]" * 100, "nested"),
    (b" " * (MAX_MESSAGE + 1), f"at most {MAX_MESSAGE}"),
    (12, "must be text"),
])
def test_what_is_not_a_message_of_this_version_is_refused_with_a_reason(raw, why):
    with pytest.raises(BadMessage) as bad:
        decode(raw)
    assert why in str(bad.value)


def test_only_the_links_events_can_be_encoded():
    with pytest.raises(TypeError):
        encode("event", link="k", item=object())
