"""What a client's JSON may be: the limits every signalling input is parsed with."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videoroomd import json_limits
from videoroomd.json_limits import JsonError


@pytest.mark.parametrize("text, says", [
    ("[" * 1000 + "]" * 1000, "nested 1000 levels deep; at most 32"),
    ("[" * 5000, "depth limit exceeded"),
    ('{"a":' * 40 + "1" + "}" * 40, "nested 40 levels deep"),
    ("1" * 5000, "number is infinity"),
    ("1e999", "number is infinity"),
    ("NaN", "expected a JSON value"),
    ('"\\ud800"', "no low surrogate in string"),
    ('"\ud800"', "surrogates not allowed"),
    ("{", "unexpected end of data at column 2"),
])
def test_json_a_client_sends_past_the_limits_is_refused_with_what_and_where(text, says):
    with pytest.raises(JsonError, match=says.replace("(", r"\(")):
        json_limits.loads(text)


def test_json_at_the_depth_limit_is_taken_and_encodes_again():
    text = "[" * json_limits.MAX_DEPTH + "]" * json_limits.MAX_DEPTH
    assert json_limits.dumps(json_limits.loads(text)) == text


def test_large_integers_become_doubles_that_encode_again():
    value = json_limits.loads("123456789012345678901234567890")
    assert json.loads(json_limits.dumps(value)) == pytest.approx(1.2345678901234568e29)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_whatever_is_accepted_encodes_again_to_the_same_value(value):
    text = json.dumps(value)
    try:
        parsed = json_limits.loads(text)
    except JsonError:
        assert json_limits.nesting(value) > json_limits.MAX_DEPTH
        return
    assert json_limits.loads(json_limits.dumps(parsed)) == parsed


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_either_parses_or_raises_json_error(text):
    try:
        json_limits.loads(text)
    except JsonError as error:
        assert "column" in str(error) or "nested" in str(error)
