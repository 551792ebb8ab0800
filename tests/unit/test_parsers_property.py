"""Property tests of the signalling parsers: any text a client sends is either taken or refused with
the protocol's own error, and whatever is taken can be encoded again for the other participants."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoroomd.signalling import phoenix, relay_protocol
from videoroomd.signalling.phoenix import ProtocolError
from videoroomd.signalling.relay_protocol import InvalidMessage

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                      max_leaves=40)
frames = st.lists(values, min_size=0, max_size=7) | values
texts = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=100),
    frames.map(lambda v: json.dumps(v, allow_nan=True)),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(300, 6000).map(lambda n: "9" * n),
)

# 400 examples each (four times Hypothesis's default): each strategy above is drawn about a hundred
# times per test; 1500 drew the same kinds again at about 6 ms an example.
EXAMPLES = 400


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(texts)
def test_any_text_is_a_phoenix_frame_or_a_protocol_error(text):
    try:
        frame = phoenix.decode(text)
    except ProtocolError as error:
        assert str(error)
        return
    # what the server does with a frame it took: answer it, or pass its payload on
    assert json.loads(phoenix.reply(frame, "error", {"reason": "x"}).encode())[3] == "phx_reply"
    json.loads(phoenix.push(frame.join_ref, frame.topic, frame.event, frame.payload).encode())


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(texts, st.fixed_dictionaries({"event": values, "data": values, "to": values}).map(json.dumps)))
def test_any_text_is_a_relay_message_or_an_invalid_message(text):
    try:
        outgoing = relay_protocol.parse(text)
    except InvalidMessage as error:
        assert str(error)
        return
    sent = json.loads(relay_protocol.message(outgoing.event, outgoing.data, sender="peer", to=relay_protocol.ALL))
    assert sent["from"] == "peer" and sent["event"] == outgoing.event
