"""The chat's rules without sockets: what text is kept, the limits, the history, the rate."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from videoroomd.rooms.chat import HISTORY, MAX_TEXT, RATE_BURST, ChatLog, ChatRefused, clean_text, utc_now


def post(log: ChatLog, text: str, sender: str = "ann", now: float = 0.0):
    return log.post(sender, sender.title(), text, now=now)


@pytest.mark.parametrize("text, shown", [
    ("hello", "hello"),
    ("  padded \n", "padded"),
    ("two\r\nlines\rhere", "two\nlines\nhere"),
    ("tab\there", "tab here"),
    ("bell\x07 nul\x00 esc\x1b[31m del\x7f c1\x85", "bell nul esc[31m del c1"),
    ("a\n\n\n\n\n\nb", "a\n\nb"),
    ("name \u202egnp.exe", "name gnp.exe"),        # a right-to-left override would show it reversed
    ("family 👩\u200d👩\u200d👧", "family 👩\u200d👩\u200d👧"),  # the joiner that makes one emoji stays
    ("<b>hi</b><img src=x onerror=alert(1)>", "<b>hi</b><img src=x onerror=alert(1)>"),  # kept as text
])
def test_clean_text_keeps_what_a_person_typed_and_drops_controls(text, shown):
    assert clean_text(text) == shown


@given(st.text(max_size=300))
def test_cleaned_text_has_no_control_characters_but_newlines(text):
    cleaned = clean_text(text)
    assert all(c == "\n" or (ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F) for c in cleaned)
    assert cleaned == cleaned.strip()
    assert clean_text(cleaned) == cleaned


def test_a_message_gets_an_id_the_name_and_the_time():
    message = post(ChatLog(), "hi")
    payload = message.payload()
    assert set(payload) == {"id", "from", "name", "text", "at"}
    assert (payload["from"], payload["name"], payload["text"]) == ("ann", "Ann", "hi")
    assert payload["at"].endswith("Z")
    datetime.fromisoformat(payload["at"].replace("Z", "+00:00"))
    assert post(ChatLog(), "hi").id != message.id


def test_utc_now_is_iso_8601_utc():
    assert datetime.fromisoformat(utc_now().replace("Z", "+00:00")).utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text, code, reason", [
    ("", "empty", "the message is empty"),
    (" \n\t\x00 ", "empty", "the message is empty"),
    ("x" * (MAX_TEXT + 1), "too_long", f"the message is too long: {MAX_TEXT + 1} characters, at most {MAX_TEXT}"),
])
def test_empty_and_long_messages_are_refused_with_a_reason(text, code, reason):
    log = ChatLog()
    with pytest.raises(ChatRefused) as refused:
        post(log, text)
    assert (refused.value.code, refused.value.reason) == (code, reason)
    assert log.history() == []


def test_the_limit_counts_characters_after_cleaning():
    assert post(ChatLog(), "x" * MAX_TEXT + "\x00" * 50).text == "x" * MAX_TEXT


def test_history_keeps_the_last_hundred_oldest_first():
    log = ChatLog(burst=1000)
    for n in range(HISTORY + 1):
        post(log, f"message {n}")
    texts = [m["text"] for m in log.history()]
    assert len(texts) == HISTORY
    assert texts[0] == "message 1" and texts[-1] == f"message {HISTORY}"


def test_a_flood_is_refused_with_how_long_to_wait_and_others_may_still_send():
    log = ChatLog()
    for _ in range(RATE_BURST):
        post(log, "spam")
    with pytest.raises(ChatRefused) as refused:
        post(log, "spam")
    assert refused.value.code == "too_fast"
    assert refused.value.reason == "you are sending messages too fast; wait 2 s"
    assert post(log, "hello", sender="bob").text == "hello"
    assert post(log, "later", now=2.0).text == "later"  # one more after the wait


def test_refused_attempts_count_against_the_rate():
    log = ChatLog()
    for _ in range(RATE_BURST):
        with pytest.raises(ChatRefused):
            post(log, "")
    with pytest.raises(ChatRefused) as refused:
        post(log, "now a real one")
    assert refused.value.code == "too_fast"


def test_forgetting_a_sender_keeps_its_messages():
    log = ChatLog()
    for _ in range(RATE_BURST):
        post(log, "bye")
    log.forget("ann")
    assert len(log.history()) == RATE_BURST
    assert post(log, "back").text == "back"
