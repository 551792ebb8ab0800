"""The messages between the control plane and a media worker: typed, framed and checked (pure)."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoroomd.media.workers import codec
from videoroomd.media.workers.codec import Decoder, MessageError, as_type, encode
from videoroomd.media.workers.commands import (Answer, Answered, CertificatePaths, HandedAllocation, ListEndpoints, MediaSocket,
                                       OpenRoom, Ping, Request, Slot, TurnHandoff, TurnState)
from videoroomd.media.workers.events import EndpointState, Reply, Silent, Stats, TurnControl, Vad


def frame(value) -> bytes:
    body = orjson.dumps(value)
    return len(body).to_bytes(4, "big") + body


def test_messages_cut_anywhere_come_out_whole_in_order_and_typed():
    sent = [Request(1, Answer("lobby#1", "e", "v=0\r\n" * 500, {"0": "e:t"}, (Slot("1", None, "s"),), {"0": ("l", "h")})),
            Request(2, OpenRoom("lobby#1", (), CertificatePaths("c.pem", "k.pem"), ("127.0.0.1",), (40000, 40100), None, 3.0)),
            EndpointState("lobby#1", "e", "connected"), Silent("lobby#1", "e", 15.0),
            Stats(1.5, {"lobby#1": {"packets_forwarded": 3}}, {"open": 0}),
            Reply(1, ok=True, result={"sdp": "v=0", "sockets": [{"host": "127.0.0.1", "port": 40000}]}),
            Reply(2, ok=False, error="NotHere: no room 'x' on this worker"),
            Request(3, TurnHandoff("t1", HandedAllocation(
                "7", "udp", ("127.0.0.1", 1), ("127.0.0.1", 2), "u", 0.0,
                TurnState(600.0, {"127.0.0.1": 300.0}, {"16385": ("127.0.0.1", 5000, 600.0)}), (("127.0.0.1", 5000),), "00ff")))]
    data = b"".join(encode(m) for m in sent)
    for step in (1, 7, 4096, len(data)):
        decoder = Decoder()
        got = []
        for start in range(0, len(data), step):
            got += decoder.feed(data[start:start + step])
        assert got == sent


def test_a_reply_result_is_read_as_its_commands_result_type():
    result = {"sdp": "v=0", "sockets": [{"host": "127.0.0.1", "port": 40000}]}
    assert as_type(result, Answer.result) == Answered("v=0", (MediaSocket("127.0.0.1", 40000),))
    assert as_type(["a", "b"], ListEndpoints.result) == ("a", "b")
    assert as_type(None, Ping.result) is None
    with pytest.raises(MessageError, match="sockets\\[0\\]: port must be int, not str"):
        as_type({"sdp": "v=0", "sockets": [{"host": "h", "port": "80"}]}, Answer.result, "sockets")
    with pytest.raises(MessageError, match="must be null"):
        as_type("surprise", Ping.result)


def test_an_optional_field_left_out_takes_its_default():
    (request,) = Decoder().feed(frame({"type": "open_room", "id": 4, "room": "r#1", "ice_servers": [],
                                       "certificate": None, "addresses": []}))
    assert request == Request(4, OpenRoom("r#1", (), None, ()))
    assert request.command.silence_timeout == 15.0 and request.command.udp_ports is None


@pytest.mark.parametrize("message, says", [
    ({"type": "answer", "id": 1, "room": "r"}, "answer: endpoint is missing"),
    ({"type": "ping", "id": True}, "ping: id is missing or not an integer"),
    ({"type": "ping", "id": 1, "room": "r"}, "ping: unknown field 'room'"),
    ({"type": "vad", "room": "r", "track": "t", "speaking": "yes"}, "vad: speaking must be bool, not str"),
    ({"type": "state", "room": "r", "endpoint": 7, "state": "connected"}, "state: endpoint must be str, not int"),
    ({"type": "open_room", "id": 1, "room": "r", "ice_servers": [], "certificate": {"cert": "c"}, "addresses": []},
     "open_room: certificate: key is missing"),
    ({"type": "open_room", "id": 1, "room": "r", "ice_servers": [], "certificate": None, "addresses": [],
      "udp_ports": [1, 2, 3]}, "open_room: udp_ports must have 2 items"),
    ({"type": "answer", "id": 1, "room": "r", "endpoint": "e", "sdp": "", "sending": {}, "slots": [["1", None, "s"]]},
     r"answer: slots\[0\] must be an object"),
    ({"type": "stats", "cpu_seconds": 1, "rooms": {"r": {"packets": "many"}}}, r"stats: rooms\['r'\]\['packets'\] must be int"),
    ({"type": "launch_missiles", "id": 1}, "unknown message type 'launch_missiles'"),
    ([1, 2], "a message is an object with a type"),
])
def test_a_message_of_the_wrong_shape_is_refused_saying_what(message, says):
    with pytest.raises(MessageError, match=says):
        Decoder().feed(frame(message))


def test_every_command_and_event_has_a_kind_of_its_own():
    kinds = [cls.kind for cls in (*codec.COMMANDS, *codec.EVENTS)]
    assert len(kinds) == len(set(kinds))
    assert Decoder().feed(encode(TurnControl("7", "beef"))) == [TurnControl("7", "beef")]
    assert Decoder().feed(encode(Vad("r#1", "t", True))) == [Vad("r#1", "t", True)]


def test_a_frame_longer_than_the_limit_is_refused_before_it_is_read():
    with pytest.raises(MessageError, match="at most"):
        Decoder().feed((codec.MAX_MESSAGE + 1).to_bytes(4, "big") + b"{")


def test_a_message_too_long_to_send_is_refused_before_it_is_sent():
    with pytest.raises(MessageError, match="at most"):
        encode(Request(1, ListEndpoints("x" * codec.MAX_MESSAGE)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_messages_or_a_message_error(data):
    try:
        Decoder().feed(len(data).to_bytes(4, "big") + data)
    except MessageError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(cls.kind for cls in (*codec.COMMANDS, *codec.EVENTS))),
       st.dictionaries(st.sampled_from(["id", "room", "endpoint", "sdp", "slots", "state", "rooms", "relay", "ok"]),
                       json_values, max_size=6))
def test_any_fields_under_a_known_type_are_a_message_or_a_message_error(kind, fields):
    try:
        Decoder().feed(frame({"type": kind, **fields}))
    except MessageError:
        pass
