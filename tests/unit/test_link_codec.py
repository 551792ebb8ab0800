"""The participant link's messages between nodes: every event survives the trip, and what is not ours is refused."""

from __future__ import annotations

import orjson
import pytest

from videoroomd.rooms.link import (ChannelPush, ChatPost, MediaEvent, ModerationRequest, PeerJoined, PeerLeft,
                                  RelaySend, RelayText)
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


@pytest.mark.parametrize("request_", [ModerationRequest("mute", "p1"), ModerationRequest("lock"),
                                      ModerationRequest("remove", "p2", "be kind", 60),
                                      ModerationRequest("unmute", "p1", unmuted="screen")], ids=lambda r: r.action)
def test_a_moderation_request_and_its_answers_come_back_as_they_left(request_):
    assert decode(encode("moderate", link="k", req=3, item=request_)) == ("moderate", {"link": "k", "req": 3,
                                                                                      "item": request_})
    assert decode(encode("moderate_refused", link="k", req=3, code="not_moderator", reason="no")) == (
        "moderate_refused", {"link": "k", "req": 3, "code": "not_moderator", "reason": "no"})


def moderation(**fields) -> bytes:
    item = {"k": "ModerationRequest", "action": "mute", "peer": "p1", "reason": "", "ban_seconds": 0,
            "unmuted": "audio", **fields}
    return orjson.dumps({"v": VERSION, "t": "moderate", "link": "k", "req": 1, "item": item})


@pytest.mark.parametrize(("raw", "why"), [
    (moderation(action="explode"), "action must be one of"),
    (moderation(peer=None), "needs peer"),
    (moderation(peer="x" * 65), "needs peer"),
    (moderation(reason="x" * 201), "at most 200"),
    (moderation(ban_seconds=10), "ban_seconds goes only with remove"),
    (moderation(action="remove", ban_seconds=10 ** 9), "ban_seconds must be"),
    (moderation(action="lock"), "takes no peer"),
    (moderation(unmuted="screen"), "not as a client's request"),
    (moderation(reason="two  spaces"), "not as a client's request"),
    (moderation(ban_seconds="60"), "must be number"),
])
def test_a_moderation_request_from_another_node_is_held_to_a_clients_limits(raw, why):
    with pytest.raises(BadMessage) as bad:
        decode(raw)
    assert why in str(bad.value)


def test_a_wait_in_the_waiting_room_and_whether_a_participant_moderates_cross_the_link():
    assert decode(encode("waiting", link="k", id="w1", position=2))[1] == {"link": "k", "id": "w1", "position": 2}
    _, fields = decode(encode("joined", link="k", peer="p", room="r", simulcast=False, people=1, moderator=True))
    assert fields["moderator"] is True


def test_a_server_api_request_between_nodes_and_its_reply_are_checked_as_every_message():
    request_ = ModerationRequest("remove", "p2", "be kind", 60)
    assert decode(encode("call_moderate", origin="a", req=7, room="r", item=request_)) == (
        "call_moderate", {"origin": "a", "req": 7, "room": "r", "item": request_})
    assert decode(encode("call", origin="a", req=8, op="record", room="r", arg="start"))[1]["arg"] == "start"
    reply = {"req": 8, "ok": True, "body": {"recording": "x"}, "code": "", "reason": ""}
    assert decode(encode("reply", **reply)) == ("reply", reply)
    for bad, why in (({"body": []}, "'body' must be object"), ({"ok": 1}, "'ok' must be flag"),
                     ({"req": "8"}, "'req' must be number")):
        with pytest.raises(BadMessage) as refused:
            decode(orjson.dumps({"v": VERSION, "t": "reply", **reply, **bad}))
        assert why in str(refused.value)
    raw = orjson.loads(moderation(action="explode"))
    with pytest.raises(BadMessage):  # an action on a room held to a client's limits, as a participant's is
        decode(orjson.dumps({"v": VERSION, "t": "call_moderate", "origin": "a", "req": 1, "room": "r",
                             "item": raw["item"]}))
