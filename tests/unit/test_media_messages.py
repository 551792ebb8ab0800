"""The messages between the control plane and a media worker: framing and checking (pure)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoroomd.media import messages
from videoroomd.media.messages import Decoder, MessageError


def test_messages_cut_anywhere_come_out_whole_and_in_order():
    sent = [messages.command("answer", 1, room="lobby#1", endpoint="e", sdp="v=0\r\n" * 500, sending={"0": "e:t"},
                             slots=[["1", None, "s"]]),
            {"type": "state", "room": "lobby#1", "endpoint": "e", "state": "connected"},
            messages.reply(1, "v=0"), messages.reply(2, error="KeyError: no room")]
    data = b"".join(messages.encode(m) for m in sent)
    for step in (1, 7, 4096, len(data)):
        decoder = Decoder()
        got = []
        for start in range(0, len(data), step):
            got += decoder.feed(data[start:start + step])
        assert got == sent


@pytest.mark.parametrize("message, says", [
    ({"type": "answer", "id": 1, "room": "r"}, "answer: endpoint is missing or of the wrong type"),
    ({"type": "ping", "id": True}, "ping: id is missing or of the wrong type"),
    ({"type": "vad", "room": "r", "track": "t", "speaking": "yes"}, "vad: speaking is missing"),
    ({"type": "launch_missiles", "id": 1}, "unknown message type 'launch_missiles'"),
    ([1, 2], "a message is an object with a type"),
])
def test_a_message_of_the_wrong_shape_is_refused_saying_what(message, says):
    import orjson
    body = orjson.dumps(message)
    with pytest.raises(MessageError, match=says):
        Decoder().feed(len(body).to_bytes(4, "big") + body)


def test_a_frame_longer_than_the_limit_is_refused_before_it_is_read():
    with pytest.raises(MessageError, match="at most"):
        Decoder().feed((messages.MAX_MESSAGE + 1).to_bytes(4, "big") + b"{")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_messages_or_a_message_error(data):
    try:
        Decoder().feed(len(data).to_bytes(4, "big") + data)
    except MessageError:
        pass
