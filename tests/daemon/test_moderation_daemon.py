"""Moderation against a running daemon: moderators by token and by the moderator password, what they may
do over the Phoenix channel (mute, stop, remove with a ban, lock, end), what the others are told, and the
refusals (not a moderator, oneself, someone who left, malformed requests)."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import pytest
import trio
from structlog.testing import capture_logs

from testsupport.media_bot import bot, media_thread
from testsupport.phoenix import PhoenixClient, phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.wait import until
from videoroomd.auth.tokens import Grants, mint

SECRET = "m" * 40
ROOMS = (f'[auth]\nkeys = {{ app = "{SECRET}" }}\n[rooms.class]\naccess = "token"\n'
         '[rooms.club]\npassword = "member"\nmoderator_password = "chair"\n'
         '[rooms.strict]\naccess = "token"\nself_unmute = false\n')


def token(identity: str, *, room: str = "class", moderator: bool = False) -> str:
    return mint("app", SECRET, room=room, identity=identity, name=identity.title(), now=time.time(), ttl=600,
                grants=Grants(moderate=moderator))


async def moderate(client: PhoenixClient, room: str, **payload) -> dict:
    """Send a moderation request; returns its reply's payload (status, response)."""
    return await client.reply_to(await client.send(f"room:{room}", "moderate", payload, client.join_ref))


async def pushed(client: PhoenixClient, event: str, timeout: float = 5.0) -> dict:
    """The payload of the next push of ``event`` (other frames skipped)."""
    with trio.fail_after(timeout):
        while True:
            _join_ref, _ref, _topic, got, payload = await client.receive(timeout)
            if got == event:
                return payload


async def joined(daemon, stack, room: str, **params) -> tuple[PhoenixClient, str]:
    client = await stack.enter_async_context(phoenix_client(daemon))
    reply = await client.join(room, **params)
    assert reply["status"] == "ok", reply
    return client, reply["response"]["peer_id"]


async def test_a_moderator_removes_with_a_reason_and_a_ban_and_the_others_are_refused(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        chair, chair_id = await joined(daemon, stack, "class", token=token("chair", moderator=True))
        pupil, pupil_id = await joined(daemon, stack, "class", token=token("pupil"))
        other, other_id = await joined(daemon, stack, "class", token=token("other"))
        # Not a moderator: refused and logged, and nothing happens to the target.
        with capture_logs() as logs:
            reply = await moderate(other, "class", action="remove", peer=pupil_id)
        assert reply["status"] == "error" and reply["response"]["code"] == "not_moderator", reply
        assert [(e["peer"], e["action"]) for e in logs if e["event"] == "moderation refused: not a moderator"] == [
            (other_id, "remove")]
        # Oneself, a peer who is not there, and malformed requests: each says what is wrong.
        for payload, code, words in (({"action": "remove", "peer": chair_id}, "self_target", "themselves"),
                                     ({"action": "mute", "peer": "nobody"}, "no_such_peer", "may have left"),
                                     ({"action": "explode"}, "malformed", "action must be one of"),
                                     ({"action": "remove"}, "malformed", "needs peer"),
                                     ({"action": "lock", "peer": pupil_id}, "malformed", "takes no peer"),
                                     ({"action": "remove", "peer": pupil_id, "ban_seconds": -1}, "malformed",
                                      "ban_seconds"),
                                     ({"action": "remove", "peer": pupil_id, "reason": "x" * 201}, "malformed",
                                      "at most 200")):
            reply = await moderate(chair, "class", **payload)
            assert reply["status"] == "error" and reply["response"]["code"] == code, (payload, reply)
            assert words in reply["response"]["reason"], (payload, reply)
        assert len(daemon.rooms.get("class").peers) == 3
        # Removed with a reason and a ban: the page hears it, then the channel is closed with it.
        reply = await moderate(chair, "class", action="remove", peer=pupil_id, reason="be kind", ban_seconds=60)
        assert reply["status"] == "ok", reply
        told = await pushed(pupil, "moderated")
        assert (told["action"], told["by"], told["reason"]) == ("remove", "Chair", "be kind")
        assert told["ban_until"] > time.time() + 50
        closed = await pushed(pupil, "phx_close")
        assert closed["reason"] == "removed by Chair: be kind"
        # The same token replayed: refused until the ban ends.
        async with phoenix_client(daemon) as again:
            reply = await again.join("class", token=token("pupil"))
            assert reply["status"] == "error" and reply["response"]["code"] == "banned", reply
            assert "may not join again for" in reply["response"]["reason"]
        reply = await moderate(chair, "class", action="mute", peer=pupil_id)
        assert reply["response"]["code"] == "no_such_peer", reply


async def test_lock_keeps_new_people_out_but_not_moderators_and_end_closes_every_channel(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        chair, _ = await joined(daemon, stack, "class", token=token("chair", moderator=True))
        pupil, _ = await joined(daemon, stack, "class", token=token("pupil"))
        assert (await moderate(chair, "class", action="lock"))["status"] == "ok"
        assert (await pushed(pupil, "moderated"))["action"] == "lock"
        async with phoenix_client(daemon) as late:
            reply = await late.join("class", token=token("late"))
            assert reply["status"] == "error" and reply["response"]["code"] == "room_locked", reply
            assert "locked" in reply["response"]["reason"]
        await joined(daemon, stack, "class", token=token("deputy", moderator=True))
        assert (await moderate(chair, "class", action="unlock"))["status"] == "ok"
        assert (await pushed(pupil, "moderated"))["action"] == "unlock"
        await joined(daemon, stack, "class", token=token("late"))
        assert (await moderate(chair, "class", action="end", reason="see you tomorrow"))["status"] == "ok"
        told = await pushed(pupil, "moderated")
        assert (told["action"], told["reason"]) == ("end", "see you tomorrow")
        closed = await pushed(pupil, "phx_close")
        assert closed["reason"] == "the meeting was ended by Chair: see you tomorrow"
        await until(lambda: daemon.rooms.get("class") is None or not daemon.rooms.get("class").peers)
        # A configured room opens again for the next meeting; while it restarts, a join is told to try
        # again in a moment, and one a moment later gets in.
        for _ in range(100):
            async with phoenix_client(daemon) as next_meeting:
                reply = await next_meeting.join("class", token=token("pupil"))
            if reply["status"] == "ok":
                break
            assert reply["response"]["code"] == "room_unavailable", reply
            await trio.sleep(0.1)
        assert reply["status"] == "ok", reply


async def test_the_moderator_password_of_a_password_room_makes_a_moderator(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        member, member_id = await joined(daemon, stack, "club", password="member", displayName="Mia")
        chair, chair_id = await joined(daemon, stack, "club", password="chair", displayName="Chair")
        async with phoenix_client(daemon) as guesser:
            assert (await guesser.join("club", password="wrong"))["response"]["code"] == "wrong_password"
        peers = daemon.rooms.get("club").peers
        assert peers[chair_id].grants.moderate and not peers[member_id].grants.moderate
        reply = await moderate(member, "club", action="remove", peer=chair_id)
        assert reply["response"]["code"] == "not_moderator", reply
        assert (await moderate(chair, "club", action="remove", peer=member_id))["status"] == "ok"
        assert (await pushed(member, "phx_close"))["reason"] == "removed by Chair"


@pytest.mark.slow
async def test_a_muted_microphone_stops_reaching_the_others_until_its_owner_unmutes(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Chair", "class", media, token=token("chair", moderator=True)) as chair, \
                bot(daemon, "Viewer", "class", media, token=token("viewer")) as viewer, \
                bot(daemon, "Speaker", "class", media, token=token("speaker")) as speaker:
            audio_id, video_id = await speaker.publish()
            await viewer.frames_from(audio_id, at_least=25)
            await viewer.frames_from(video_id, at_least=5)
            await chair.client.send("room:class", "moderate", {"action": "mute", "peer": speaker.id},
                                    chair.client.join_ref)
            told = await until(lambda: next((p for e, p in speaker.client.pushes if e == "moderated"), None))
            assert (told["action"], told["source"], told["by"], told["may_unmute"]) == ("mute", "audio", "Chair", True)
            await trio.sleep(0.5)  # what was on its way
            audio, video = viewer.received[audio_id], viewer.received[video_id]
            await trio.sleep(1.5)
            assert viewer.received[audio_id] - audio <= 2  # held: nothing forwarded
            assert viewer.received[video_id] > video       # the camera goes on
            # The person unmutes by itself (the room's self_unmute is on): the microphone flows again.
            await speaker.client.send("room:class", "moderate", {"action": "unmute", "peer": speaker.id},
                                      speaker.client.join_ref)
            await viewer.frames_from(audio_id, at_least=viewer.received[audio_id] + 25)


@pytest.mark.slow
async def test_a_stopped_screen_share_stops_reaching_the_others_while_the_camera_goes_on(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Chair", "class", media, token=token("chair", moderator=True)) as chair, \
                bot(daemon, "Viewer", "class", media, token=token("viewer")) as viewer, \
                bot(daemon, "Speaker", "class", media, token=token("speaker")) as speaker:
            (camera,) = await speaker.publish(audio=False)
            await viewer.frames_from(camera, at_least=5)
            (screen,) = await speaker.publish(audio=False, screen=True)
            await viewer.frames_from(screen, at_least=5)
            await chair.client.send("room:class", "moderate", {"action": "stop_screen", "peer": speaker.id},
                                    chair.client.join_ref)  # its reply goes to the bot's pump
            told = await until(lambda: next((p for e, p in speaker.client.pushes if e == "moderated"), None))
            assert (told["action"], told["source"], told["by"]) == ("stop_screen", "screen", "Chair")
            await trio.sleep(0.5)  # what was on its way
            shown, filmed = viewer.received[screen], viewer.received[camera]
            await trio.sleep(1.5)
            assert viewer.received[screen] - shown <= 2  # held: nothing of the screen forwarded
            assert viewer.received[camera] > filmed      # the camera goes on


@pytest.mark.slow
async def test_without_self_unmute_the_muted_cannot_unmute_until_a_moderator_allows_it(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Chair", "strict", media, token=token("chair", room="strict", moderator=True)) as chair, \
                bot(daemon, "Viewer", "strict", media, token=token("viewer", room="strict")) as viewer, \
                bot(daemon, "Speaker", "strict", media, token=token("speaker", room="strict")) as speaker:
            (audio_id,) = await speaker.publish(video=False)
            await viewer.frames_from(audio_id, at_least=25)

            async def request(who, **payload) -> dict:
                before = len(who.client.pushes)
                await who.client.send("room:strict", "moderate", payload, who.client.join_ref)
                return await until(lambda: next((p for e, p in who.client.pushes[before:] if e == "phx_reply"),
                                                 None))

            assert (await request(chair, action="mute", peer=speaker.id))["status"] == "ok"
            told = await until(lambda: next((p for e, p in speaker.client.pushes if e == "moderated"), None))
            assert told["may_unmute"] is False
            refused = await request(speaker, action="unmute", peer=speaker.id)
            assert refused["status"] == "error" and refused["response"]["code"] == "not_allowed", refused
            await trio.sleep(0.5)
            audio = viewer.received[audio_id]
            await trio.sleep(1.0)
            assert viewer.received[audio_id] - audio <= 2
            # Joining again with the same token does not take the microphone back either.
            async with phoenix_client(daemon) as again:
                reply = await again.join("strict", token=token("speaker", room="strict"))
                grants = daemon.rooms.get("strict").peers[reply["response"]["peer_id"]].grants
                assert grants.publish == {"video", "screen"}
            assert (await request(chair, action="unmute", peer=speaker.id))["status"] == "ok"
            assert (await request(speaker, action="unmute", peer=speaker.id))["status"] == "ok"
            await viewer.frames_from(audio_id, at_least=viewer.received[audio_id] + 25)


LOBBY_ROOMS = ROOMS + '[rooms.hall]\npassword = "in"\nmoderator_password = "chair"\nlobby = true\n'


async def test_the_waiting_room_holds_joiners_until_a_moderator_admits_or_declines_them(tmp_path, monkeypatch):
    monkeypatch.setattr("videoroomd.rooms.waiting_room.MAX_WAITING", 2)
    async with running_daemon(tmp_path, LOBBY_ROOMS) as daemon, AsyncExitStack() as stack:
        guest = await stack.enter_async_context(phoenix_client(daemon))
        join_ref = await guest.send("room:hall", "phx_join", {"displayName": "Gus", "password": "in"})
        waiting = await pushed(guest, "lobby")
        assert waiting["waiting"] is True and waiting["position"] == 1
        assert not daemon.rooms.get("hall").peers  # not in the room yet
        # A moderator walks straight in, and sees who waits.
        chair, _ = await joined(daemon, stack, "hall", password="chair", displayName="Chair")
        assert (await pushed(chair, "lobby"))["waiting"] == [{"id": waiting["id"], "name": "Gus"}]
        assert (await moderate(chair, "hall", action="admit", peer=waiting["id"]))["status"] == "ok"
        reply = await guest.reply_to(join_ref)
        assert reply["status"] == "ok", reply
        assert (await pushed(chair, "lobby"))["waiting"] == []
        # Not a moderator: cannot admit. Declined: told why. Gone: the place is free again.
        other = await stack.enter_async_context(phoenix_client(daemon))
        other_ref = await other.send("room:hall", "phx_join", {"displayName": "Olga", "password": "in"})
        olga = await pushed(other, "lobby")
        guest.join_ref = join_ref
        refused = await moderate(guest, "hall", action="admit", peer=olga["id"])
        assert refused["response"]["code"] == "not_moderator", refused
        assert (await moderate(chair, "hall", action="decline", peer=olga["id"], reason="full today"))["status"] == "ok"
        declined = await other.reply_to(other_ref)
        assert declined["response"] == {"code": "declined", "reason": "a moderator did not let you in: full today"}
        async with phoenix_client(daemon) as quitter:
            await quitter.send("room:hall", "phx_join", {"displayName": "Quinn", "password": "in"})
            await pushed(quitter, "lobby")
            await until(lambda: len(daemon.rooms.get("hall").waiting.waiters) == 1)
        await until(lambda: not daemon.rooms.get("hall").waiting.waiters)
        # Bounded: the third to wait at once is refused.
        async with phoenix_client(daemon) as a, phoenix_client(daemon) as b, phoenix_client(daemon) as c:
            for client in (a, b):
                await client.send("room:hall", "phx_join", {"displayName": "W", "password": "in"})
                await pushed(client, "lobby")
            full = await c.join("hall", displayName="W", password="in")
            assert full["response"]["code"] == "lobby_full", full
        assert (await moderate(chair, "hall", action="admit", peer="gone"))["response"]["code"] == "no_such_peer"


async def test_without_an_answer_a_waiting_join_is_refused_in_time(tmp_path, monkeypatch):
    monkeypatch.setattr("videoroomd.rooms.waiting_room.WAIT_TIMEOUT", 0.5)
    async with running_daemon(tmp_path, LOBBY_ROOMS) as daemon:
        async with phoenix_client(daemon) as guest:
            reply = await guest.join("hall", displayName="Gus", password="in")
            assert reply["status"] == "error" and reply["response"]["code"] == "lobby_timeout", reply
            assert daemon.rooms.get("hall").waiting.waiters == {}
