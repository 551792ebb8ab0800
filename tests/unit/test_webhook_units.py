"""Webhooks without sockets: the signed body, the receiver's check, the [webhooks] keys, the URL as
logs show it, and the sink that never waits."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from videoroomd.config import ConfigError, WebhooksConfig, parse
from videoroomd.config.schema import DEFAULT_WEBHOOK_EVENTS
from videoroomd.config.webhook_url import shown
from videoroomd.webhooks import Webhooks
from videoroomd.webhooks.http_post import Target
from videoroomd.webhooks.signing import body, signature, verify

KEY = "k" * 32


def test_the_body_is_compact_json_with_id_event_timestamp_and_room_first_and_its_signature_is_the_hmac():
    payload = body("participant.left", "lobby", {"participant": {"id": "p1", "name": "Zoë"}, "reason": "left",
                                                  "room": "not this"}, event_id="e1", timestamp=1700000000)
    assert payload == ('{"id":"e1","event":"participant.left","timestamp":1700000000,"room":"lobby",'
                       '"participant":{"id":"p1","name":"Zoë"},"reason":"left"}').encode()
    expected = "sha256=" + hmac.new(KEY.encode(), payload, hashlib.sha256).hexdigest()
    assert signature(KEY, payload) == expected
    assert verify(KEY, payload, expected, now=1700000100)["reason"] == "left"


@pytest.mark.parametrize(("header", "now", "why"), [
    (None, 1700000000, "bad signature"),
    ("sha256=" + "0" * 64, 1700000000, "bad signature"),
    ("valid", 1700000000 + 301, "timestamp"),   # replayed later than the tolerance
    ("valid", 1700000000 - 301, "timestamp"),   # or from a clock far ahead
])
def test_a_receiver_refuses_a_wrong_signature_and_an_old_body(header, now, why):
    payload = body("room.started", "lobby", {}, event_id="e1", timestamp=1700000000)
    if header == "valid":
        header = signature(KEY, payload)
    with pytest.raises(ValueError, match=why):
        verify(KEY, payload, header, now=now)
    with pytest.raises(ValueError, match="bad signature"):  # a body changed in flight
        verify(KEY, payload.replace(b"lobby", b"other"), signature(KEY, payload), now=1700000000)


def config(text: str) -> WebhooksConfig:
    return parse("[rooms.a]\n[webhooks]\n" + text, "test.toml", Path(".")).webhooks


def test_webhooks_keys_have_their_defaults_and_chat_is_opt_in():
    webhooks = config(f'urls = ["https://app.example.org/hooks?token=t"]\nkey = "{KEY}"\n')
    assert webhooks.urls == ("https://app.example.org/hooks?token=t",) and webhooks.enabled
    assert webhooks.events == DEFAULT_WEBHOOK_EVENTS and "chat.message" not in webhooks.events
    assert (webhooks.timeout, webhooks.retry_for, webhooks.queue_size) == (5.0, 60.0, 1000)
    assert KEY not in repr(webhooks) and "token=t" not in repr(webhooks)
    assert not config("").enabled


@pytest.mark.parametrize(("text", "message"), [
    ('urls = ["ftp://example.org/"]\nkey = "' + KEY + '"', "urls: item 1: expected an http:// or https:// URL"),
    ('urls = ["http://user:pw@example.org/"]\nkey = "' + KEY + '"', "no user name or password"),
    ('urls = ["http:///path"]\nkey = "' + KEY + '"', "names no host"),
    ('urls = ["http://example.org:99999/"]\nkey = "' + KEY + '"', "expected http://HOST"),
    ('urls = ["http://example.org/ x"]\nkey = "' + KEY + '"', "no spaces"),
    ('urls = ["http://a.org/", "http://a.org/"]\nkey = "' + KEY + '"', "listed twice"),
    ('urls = [' + ", ".join(f'"http://h{n}.org/"' for n in range(17)) + ']\nkey = "' + KEY + '"', "at most 16"),
    ('urls = ["http://example.org/"]', "urls needs key"),
    ('urls = ["http://example.org/"]\nkey = "short"', "a secret of 32 to 1024 characters"),
    ('events = ["room.started", "room.exploded"]', "events: item 2: expected one of"),
    ('timeout = 0.1', "from 0.5 to 60"),
    ('queue_size = 0', "from 1 to 100000"),
])
def test_bad_webhooks_keys_are_named_with_their_line(text, message):
    with pytest.raises(ConfigError) as error:
        config(text)
    assert message in str(error.value) and "test.toml:" in str(error.value)
    assert "pw@" not in str(error.value) and "'short'" not in str(error.value)  # secrets are not repeated


def test_a_url_is_shown_without_its_path_and_query():
    assert shown("https://app.example.org/hooks/T0123/secret?x=1") == "https://app.example.org/..."
    assert shown("http://[::1]:8080/") == "http://[::1]:8080/"
    assert Target.of("http://[::1]:8080/a?b=c") == Target(False, "::1", 8080, "[::1]:8080", "/a?b=c")
    assert Target.of("https://example.org") == Target(True, "example.org", 443, "example.org", "/")


async def test_the_sink_keeps_the_events_asked_for_and_drops_what_a_full_queue_cannot_take():
    sink = Webhooks(WebhooksConfig(urls=("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"), key=KEY, queue_size=2),
                    clock=lambda: 1700000000.5)
    sink.emit("chat.message", "lobby", message={"text": "not asked for"})
    assert sink.queued() == 0
    for number in range(3):
        sink.emit("participant.joined", "lobby", participant={"id": str(number)})
    assert sink.queued() == 4 and sink.counts.dropped == {"queue_full": 2}
    first = sink.endpoints[0]._receive.receive_nowait()
    assert json.loads(first.body)["timestamp"] == 1700000000
    assert first.signature == signature(KEY, first.body)
    sink.emit("participant.joined", "lobby", participant=object())  # not JSON: dropped, never raised
    sink.emit("participant.left", "lobby", reason="x" * 70000)   # too large: dropped too
    assert sink.counts.dropped == {"queue_full": 2, "error": 2}
