"""Access tokens against a running daemon: the Phoenix socket (connect params, join payload), the relay,
the chat and publish grants, and logs that never hold a token."""

from __future__ import annotations

import json
import time

import pytest
import trio
from structlog.testing import capture_logs
from trio_websocket import ConnectionRejected

from testsupport.media_bot import bot, media_thread
from testsupport.phoenix import phoenix_socket
from testsupport.signalling_helpers import next_json, relay_client, running_daemon
from videoroomd.auth.tokens import Grants, mint

SECRET = "k" * 40
ROOMS = f'[auth]\nkeys = {{ app = "{SECRET}", other = "{"o" * 40}" }}\n[rooms.class]\naccess = "token"\n' \
        '[rooms.lobby]\n'


def token(room: str = "class", identity: str = "ann", name: str | None = "Ann", *, ttl: float = 600,
          start: float = 0, key: str = "app", secret: str = SECRET, grants: Grants = Grants()) -> str:
    now = time.time()
    return mint(key, secret, room=room, identity=identity, name=name, now=now, ttl=ttl, not_before=now + start,
                grants=grants)


def socket_url(daemon, token_text: str | None = None) -> str:
    query = f"token={token_text}&vsn=2.0.0" if token_text else "vsn=2.0.0"
    return f"ws://127.0.0.1:{daemon.port}/socket/websocket?{query}"


def logged(logs: list[dict]) -> str:
    return json.dumps(logs, default=str)


async def test_a_token_in_the_socket_params_joins_a_token_room_with_its_name_and_identity(tmp_path):
    text = token()
    with capture_logs() as logs:
        async with running_daemon(tmp_path, ROOMS) as daemon:
            async with phoenix_socket(socket_url(daemon, text)) as client:
                reply = await client.join("class", displayName="typed on the page")
                assert reply["status"] == "ok", reply
                (peer,) = daemon.rooms.get("class").peers.values()
                assert (peer.name, peer.identity, peer.grants) == ("Ann", "ann", Grants())
    assert text not in logged(logs) and text.split(".")[2] not in logged(logs) and SECRET not in logged(logs)


async def test_a_token_in_the_join_payload_joins_and_wins_over_the_socket_params(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with phoenix_socket(socket_url(daemon)) as client:
            reply = await client.join("class", displayName="x", token=token(identity="bob", name=None))
            assert reply["status"] == "ok", reply
            (peer,) = daemon.rooms.get("class").peers.values()
            assert (peer.name, peer.identity) == ("x", "bob")  # no name in the token: the typed one
        async with phoenix_socket(socket_url(daemon, token(ttl=-5))) as client:
            assert (await client.join("class", displayName="x", token=token()))["status"] == "ok"


@pytest.mark.parametrize("make, code, words", [
    (lambda: None, "token_required", "access token"),
    (lambda: token(ttl=-1), "token_expired", "expired"),
    (lambda: token(start=60), "token_not_yet_valid", "not valid for another"),
    (lambda: token(room="lobby"), "token_wrong_room", "not for room 'class'"),
    (lambda: token(secret="f" * 40), "token_bad_signature", "signature"),
    (lambda: token(key="gone"), "token_unknown_key", "'gone'"),
    (lambda: token(grants=Grants(join=False)), "no_join_grant", "does not allow joining"),
    (lambda: "not.a.token", "token_malformed", "JWT"),
])
async def test_refused_tokens_say_why_and_are_never_logged(tmp_path, make, code, words):
    text = make()
    with capture_logs() as logs:
        async with running_daemon(tmp_path, ROOMS) as daemon:
            for url, params in ((socket_url(daemon, text), {}), (socket_url(daemon), {"token": text} if text else {})):
                async with phoenix_socket(url) as client:
                    reply = await client.join("class", displayName="x", **params)
                    assert reply["status"] == "error", reply
                    assert reply["response"]["code"] == code and words in reply["response"]["reason"], reply
            assert not daemon.rooms.get("class").peers
    if text and len(text.split(".")[-1]) >= 20:  # a signature, never logged
        assert text not in logged(logs) and text.split(".")[-1] not in logged(logs)


async def test_chat_needs_the_chat_grant(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with phoenix_socket(socket_url(daemon, token(grants=Grants(chat=False)))) as mute, \
                phoenix_socket(socket_url(daemon, token(identity="bob", name="Bob"))) as talker:
            for client in (mute, talker):
                assert (await client.join("class"))["status"] == "ok"
            ref = await mute.send("room:class", "chat", {"text": "hello"}, mute.join_ref)
            reply = await mute.reply_to(ref)
            assert reply["status"] == "error" and reply["response"]["code"] == "not_allowed"
            assert "chat" in reply["response"]["reason"]
            ref = await talker.send("room:class", "chat", {"text": "hello"}, talker.join_ref)
            assert (await talker.reply_to(ref))["status"] == "ok"


async def test_the_relay_takes_a_token_in_the_query_or_the_cookie(tmp_path):
    with capture_logs() as logs:
        await _relay_with_tokens(tmp_path)
    assert "token=" not in logged(logs) and ".ey" not in logged(logs)  # no query string, no JWT claims


async def _relay_with_tokens(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with relay_client(daemon, "class", f"?token={token()}") as websocket:
            assert (await next_json(websocket))["event"] == "authenticated"
            (peer,) = daemon.rooms.get("class").peers.values()
            assert (peer.kind, peer.name, peer.identity) == ("relay", "Ann", "ann")
        cookie = json.dumps({"username": "bob", "token": token(identity="bob", name=None)}).replace('"', '\\"')
        async with relay_client(daemon, "class", extra_headers=[("Cookie", f'credentials="{cookie}"')]) as websocket:
            assert (await next_json(websocket))["event"] == "authenticated"
        for query, words in (("", b"access token"), (f"?token={token(ttl=-1)}", b"expired"),
                             (f"?token={token(room='lobby')}", b"not for room")):
            with pytest.raises(ConnectionRejected) as caught:
                async with relay_client(daemon, "class", query):
                    pass
            assert caught.value.status_code == 401 and words in caught.value.body


def answered_directions(sdp: str) -> dict[str, str]:
    """mid -> its direction in an answer's SDP, m-section by m-section."""
    directions = {}
    for section in sdp.split("\r\nm=")[1:]:
        lines = section.split("\r\n")
        mid = next(line[len("a=mid:"):] for line in lines if line.startswith("a=mid:"))
        directions[mid] = next(line[2:] for line in lines if line in ("a=sendrecv", "a=sendonly", "a=recvonly",
                                                                     "a=inactive"))
    return directions


async def sending_mids(participant) -> set[str]:
    async def look():
        return {t.mid for t in participant.pc.getTransceivers() if t.sender.track is not None}

    return await participant.media.call(look)


@pytest.mark.slow
async def test_send_tracks_without_the_publish_grant_get_no_answer_while_granted_media_flows(tmp_path):
    audio_only = Grants(publish=frozenset({"audio"}))
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Viewer", "class", media, token=token(identity="v", name="Viewer")) as viewer, \
                bot(daemon, "Blind", "class", media, token=token(identity="b", grants=Grants(subscribe=False))) as blind, \
                bot(daemon, "Mute", "class", media, token=token(identity="m", grants=Grants(publish=frozenset()))) as mute, \
                bot(daemon, "Speaker", "class", media, token=token(identity="s", grants=audio_only)) as speaker:
            refused = await mute.publish()
            audio_id, video_id = await speaker.publish()
            added = await viewer.wait_for(lambda e: e["type"] == "tracksAdded")
            assert added["data"]["endpointId"] == speaker.id and set(added["data"]["tracks"]) == {audio_id}
            await viewer.frames_from(audio_id, at_least=25)
            # The refused tracks: not in the answer's midToTrackId, their m-lines answered inactive.
            answer = (await mute.wait_for(lambda e: e["type"] == "sdpAnswer"))["data"]
            assert not set(refused) & set(answer["midToTrackId"].values())
            directions = answered_directions(answer["sdp"])
            assert [directions[mid] for mid in await sending_mids(mute)] == ["inactive", "inactive"]
            answer = (await speaker.wait_for(lambda e: e["type"] == "sdpAnswer"))["data"]
            assert audio_id in answer["midToTrackId"].values() and video_id not in answer["midToTrackId"].values()
            assert sorted(answered_directions(answer["sdp"])[mid] for mid in await sending_mids(speaker)) == \
                ["inactive", "recvonly"]
            assert not any(e["type"] == "tracksAdded" and e["data"]["endpointId"] == mute.id for e in viewer.events)
            assert viewer.received.keys() <= {audio_id} and daemon.rooms.get("class").track_count() == 1
            # Without the subscribe grant nothing is offered to receive (nor asked to negotiate for).
            offers = [e for e in blind.events if e["type"] == "offerData"]
            assert all(sum(e["data"]["tracksTypes"].values()) == 0 for e in offers)
            await trio.sleep(1)
            assert not blind.received
