"""Moderation and the waiting room through other nodes: daemons on the test run's Redis, the room on one,
its moderator and the people it acts on reaching it through the others, with the same rules and refusals as
participants of the room's own node (tests/daemon/test_moderation_daemon.py)."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.cluster_nodes import cluster_daemons
from testsupport.media_bot import bot, media_thread
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.wait import until
from test_cluster_links import _port, cluster
from videoroomd.cluster.cluster_service import BEAT, JOIN_TIMEOUT, SILENCE
from test_moderation_daemon import LOBBY_ROOMS, joined, moderate, pushed, token


async def three_nodes(stack: AsyncExitStack, tmp_path, redis_server, room: str) -> list:
    """Three daemons on one Redis, the one that runs ``room`` first."""
    redis_server.command("FLUSHALL")
    daemons = await cluster_daemons(stack, tmp_path, ("node-a", "node-b", "node-c"),
                                    lambda node: cluster(redis_server.url, node) + LOBBY_ROOMS)
    await until(lambda: any(d.rooms.get(room) is not None for d in daemons))
    return sorted(daemons, key=lambda d: d.rooms.get(room) is None)


@pytest.mark.slow
async def test_a_moderator_on_one_node_mutes_and_removes_a_participant_on_another_in_a_room_on_a_third(
        tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, b, c = await three_nodes(stack, tmp_path, redis_server, "class")
        media = await stack.enter_async_context(media_thread())
        client = await stack.enter_async_context(phoenix_client(b))
        reply = await client.join("class", token=token("chair", moderator=True))
        assert reply["status"] == "ok" and reply["response"]["moderator"] is True, reply
        chair_id = reply["response"]["peer_id"]
        viewer = await stack.enter_async_context(bot(home, "Viewer", "class", media, token=token("viewer")))
        speaker = await stack.enter_async_context(bot(c, "Speaker", "class", media, token=token("speaker")))
        assert b.rooms.get("class") is None and c.rooms.get("class") is None
        audio_id, video_id = await speaker.publish()
        await viewer.frames_from(audio_id, at_least=25)
        # The remote moderator is told it moderates; a remote participant that does not is refused.
        async with phoenix_client(c) as other:
            reply = await other.join("class", token=token("other"))
            assert reply["status"] == "ok" and reply["response"]["moderator"] is False, reply
            refused = await moderate(other, "class", action="mute", peer=speaker.id)
            assert refused["response"]["code"] == "not_moderator", refused
            reply = await moderate(other, "class", action="remove", peer="nobody")
            assert reply["response"]["code"] == "not_moderator", reply
        watcher, _ = await joined(c, stack, "class", token=token("watcher"))
        refused = await moderate(client, "class", action="remove", peer=chair_id)
        assert refused["response"]["code"] == "self_target", refused
        # Muted from node B: node C's participant is told, and the room's worker stops forwarding it.
        assert (await moderate(client, "class", action="mute", peer=speaker.id))["status"] == "ok"
        told = await until(lambda: next((p for e, p in speaker.client.pushes if e == "moderated"), None))
        assert (told["action"], told["source"], told["by"]) == ("mute", "audio", "Chair")
        await trio.sleep(0.5)  # what was on its way
        audio, video = viewer.received[audio_id], viewer.received[video_id]
        await trio.sleep(1.5)
        assert viewer.received[audio_id] - audio <= 2
        assert viewer.received[video_id] > video
        # Removed from node B with a reason and a ban: told, closed, and the same token refused through C.
        reply = await moderate(client, "class", action="remove", peer=speaker.id, reason="be kind", ban_seconds=60)
        assert reply["status"] == "ok", reply
        told = await until(lambda: next((p for e, p in speaker.client.pushes if e == "moderated"
                                         and p["action"] == "remove"), None))
        assert (told["by"], told["reason"]) == ("Chair", "be kind") and told["ban_until"] > time.time() + 50
        closed = await until(lambda: next((p for e, p in speaker.client.pushes if e == "phx_close"), None))
        assert closed["reason"] == "removed by Chair: be kind"
        await until(lambda: speaker.id not in home.rooms.get("class").peers)
        async with phoenix_client(c) as again:
            reply = await again.join("class", token=token("speaker"))
            assert reply["response"]["code"] == "banned", reply
        assert (await moderate(client, "class", action="mute", peer=speaker.id))["response"]["code"] == "no_such_peer"
        # A lock from node B reaches everyone, and keeps new people out through any node.
        assert (await moderate(client, "class", action="lock"))["status"] == "ok"
        await until(lambda: any(e == "moderated" and p["action"] == "lock" for e, p in viewer.client.pushes))
        assert (await pushed(watcher, "moderated"))["action"] == "lock"
        async with phoenix_client(c) as late:
            assert (await late.join("class", token=token("late")))["response"]["code"] == "room_locked"
        # The end of the meeting, from node B, closes the channel of everyone, on every node.
        assert (await moderate(client, "class", action="end", reason="bye"))["status"] == "ok"
        told = await pushed(watcher, "moderated")
        assert (told["action"], told["by"], told["reason"]) == ("end", "Chair", "bye")
        assert (await pushed(watcher, "phx_close"))["reason"] == "the meeting was ended by Chair: bye"


@pytest.mark.slow
async def test_a_join_through_another_node_waits_is_told_so_and_a_moderator_on_any_node_answers(
        tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, b, c = await three_nodes(stack, tmp_path, redis_server, "hall")
        room = home.rooms.get("hall")
        guest = await stack.enter_async_context(phoenix_client(b))
        join_ref = await guest.send("room:hall", "phx_join", {"displayName": "Gus", "password": "in"})
        waiting = await pushed(guest, "lobby")
        assert waiting["waiting"] is True and waiting["position"] == 1
        assert not room.peers and len(room.waiting.waiters) == 1
        # Longer than a remote join waits for an answer (JOIN_TIMEOUT), and than a link may stay silent:
        # the beats keep the wait on both nodes.
        await trio.sleep(max(JOIN_TIMEOUT, SILENCE) + 2 * BEAT)
        assert len(room.waiting.waiters) == 1 and len(b.cluster.service.edge.links) == 1
        # The moderator on the room's node sees who waits and admits them.
        chair, _ = await joined(home, stack, "hall", password="chair", displayName="Chair")
        assert (await pushed(chair, "lobby"))["waiting"] == [{"id": waiting["id"], "name": "Gus"}]
        assert (await moderate(chair, "hall", action="admit", peer=waiting["id"]))["status"] == "ok"
        reply = await guest.reply_to(join_ref)
        assert reply["status"] == "ok", reply
        assert reply["response"]["peer_id"] in room.peers
        # A moderator on node C declines someone waiting through node B; not a moderator: refused.
        deputy, _ = await joined(c, stack, "hall", password="chair", displayName="Deputy")
        other = await stack.enter_async_context(phoenix_client(b))
        other_ref = await other.send("room:hall", "phx_join", {"displayName": "Olga", "password": "in"})
        olga = await pushed(other, "lobby")
        guest.join_ref = join_ref
        refused = await moderate(guest, "hall", action="admit", peer=olga["id"])
        assert refused["response"]["code"] == "not_moderator", refused
        reply = await moderate(deputy, "hall", action="decline", peer=olga["id"], reason="full today")
        assert reply["status"] == "ok", reply
        declined = await other.reply_to(other_ref)
        assert declined["response"] == {"code": "declined", "reason": "a moderator did not let you in: full today"}
        # Someone who gives up while waiting through another node frees the place at once.
        async with phoenix_client(c) as quitter:
            await quitter.send("room:hall", "phx_join", {"displayName": "Quinn", "password": "in"})
            await pushed(quitter, "lobby")
            await until(lambda: len(room.waiting.waiters) == 1)
        await until(lambda: not room.waiting.waiters)
        assert (await moderate(deputy, "hall", action="admit", peer="gone"))["response"]["code"] == "no_such_peer"


@pytest.mark.slow
async def test_a_wait_through_a_node_that_died_frees_its_place_in_the_waiting_room(tmp_path, start_daemon,
                                                                                    redis_server):
    redis_server.command("FLUSHALL")
    rooms = cluster(redis_server.url, "node-a") + LOBBY_ROOMS
    async with running_daemon(tmp_path, rooms=rooms) as home:
        room = home.rooms.get("hall")
        assert room is not None
        edge = start_daemon(rooms=cluster(redis_server.url, "node-b") + LOBBY_ROOMS, name="b.toml", wait=False)
        await trio.to_thread.run_sync(edge.wait_healthy)  # this process's node beats on meanwhile
        async with phoenix_client(_port(edge)) as guest:
            await guest.send("room:hall", "phx_join", {"displayName": "Gus", "password": "in"})
            assert (await pushed(guest, "lobby"))["waiting"] is True
            assert len(room.waiting.waiters) == 1
            edge.proc.kill()  # SIGKILL: the guest's node says nothing more
            started = trio.current_time()
            await until(lambda: not room.waiting.waiters, timeout=8)
            assert trio.current_time() - started < SILENCE + 2 * BEAT
            assert home.cluster.service.room_side.endpoints == {}


@pytest.mark.slow
async def test_a_wait_in_a_room_whose_node_died_is_refused_so_that_the_page_tries_again(tmp_path, start_daemon,
                                                                                         redis_server):
    redis_server.command("FLUSHALL")
    owner = start_daemon(rooms=cluster(redis_server.url, "node-a") + LOBBY_ROOMS, name="a.toml")
    async with running_daemon(tmp_path, rooms=cluster(redis_server.url, "node-b") + LOBBY_ROOMS) as edge:
        with trio.fail_after(5):
            await edge.cluster.bus.subscribed.wait()
        assert edge.rooms.get("hall") is None
        async with phoenix_client(edge) as guest:
            join_ref = await guest.send("room:hall", "phx_join", {"displayName": "Gus", "password": "in"})
            assert (await pushed(guest, "lobby"))["waiting"] is True
            owner.proc.kill()  # SIGKILL: the room's node says nothing more
            started = trio.current_time()
            reply = await guest.reply_to(join_ref, timeout=8)
            assert trio.current_time() - started < SILENCE + 2 * BEAT
            assert (reply["status"], reply["response"]["code"]) == ("error", "room_unavailable"), reply
            assert edge.cluster.service.edge.links == {}
