"""Webhooks against a real daemon and a receiver on 127.0.0.1: what a call tells, signed; and endpoints
that are slow, refuse, redirect or never answer cost the calls nothing and the daemon bounded memory."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import trio

from testsupport.daemon import free_port
from testsupport.media_bot import bot, media_thread
from testsupport.metrics import metric
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.webhook_receiver import webhook_receiver
from videoroomd.webhooks.signing import verify

KEY = "a-webhook-secret-of-thirty-two-characters-or-more"


def webhooks(*urls: str, extra: str = "") -> str:
    listed = ", ".join(f'"{url}"' for url in urls)
    return f'[webhooks]\nurls = [{listed}]\nkey = "{KEY}"\n{extra}\n'


def rooms(*urls: str, extra: str = "") -> str:
    return '[ice]\naddresses = ["127.0.0.1"]\n' + webhooks(*urls, extra=extra) + "[rooms.lobby]\nmax_peers = 8\n"


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


async def test_a_call_is_told_in_order_with_valid_signatures(tmp_path):
    events_setting = 'events = ["room.started", "room.ended", "participant.joined", "participant.left", ' \
                     '"track.published", "track.unpublished", "chat.message"]'
    async with webhook_receiver() as receiver, \
            running_daemon(tmp_path, rooms(receiver.url, extra=events_setting)) as daemon, media_thread() as media:
        await receiver.wait_for(lambda events: "room.started" in names(events))
        async with bot(daemon, "Ann", media=media) as ann:
            audio_id, video_id = await ann.publish()
            async with phoenix_client(daemon) as bob:
                reply = await bob.join("lobby", displayName="Bob")
                bob_id = reply["response"]["peer_id"]
                await bob.send("room:lobby", "chat", {"text": "hello, webhooks"}, bob.join_ref)
                await receiver.wait_for(lambda events: "chat.message" in names(events))
            await receiver.wait_for(lambda events: names(events).count("participant.left") == 1)
        events = await receiver.wait_for(lambda events: names(events).count("participant.left") == 2)
        await daemon.shutdown("test")
        events = await receiver.wait_for(lambda events: "room.ended" in names(events))

    for received in receiver.received:  # each signed, the timestamp in the signed body, its id and event in headers
        event = verify(KEY, received.body, received.headers["x-videoroomd-signature"], now=time.time(), tolerance=60)
        assert received.headers["x-videoroomd-id"] == event["id"]
        assert received.headers["x-videoroomd-event"] == event["event"]
        assert received.headers["content-type"] == "application/json"
        assert event["room"] == "lobby"
    assert len({e["id"] for e in events}) == len(events)
    with pytest.raises(ValueError, match="signature"):
        verify("another-key-of-thirty-two-characters-at-least", receiver.received[0].body,
               receiver.received[0].headers["x-videoroomd-signature"], now=time.time())

    ann_events = [e for e in events if e.get("participant", {}).get("id") == ann.id]
    assert names(ann_events) == ["participant.joined", "track.published", "track.published",
                                 "track.unpublished", "track.unpublished", "participant.left"]
    assert {e["track"]["id"]: e["track"]["source"] for e in ann_events[1:3]} == {audio_id: "audio", video_id: "video"}
    assert ann_events[0]["participant"] == {"id": ann.id, "name": "Ann", "identity": None, "kind": "rtc"}
    assert ann_events[-1]["reason"]
    bob_events = [e for e in events if e.get("participant", {}).get("id") == bob_id]
    assert names(bob_events) == ["participant.joined", "chat.message", "participant.left"]
    assert bob_events[1]["message"]["text"] == "hello, webhooks"
    assert names(events)[0] == "room.started" and names(events)[-1] == "room.ended"
    assert events[-1]["reason"] == "the server is shutting down"
