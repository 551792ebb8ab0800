"""The server API in a cluster: whichever node is asked acts on the room where it runs, answering what
that node answers; a node that stops answering is named within the deadline, never a hang."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.media_bot import bot, media_thread
from testsupport.metrics import sample
from testsupport.signalling_helpers import running_daemon
from testsupport.wait import until
from test_cluster_links import _port
from test_participant_link import ended, redis_rooms, rooms  # noqa: F401  (rooms: the fixture)
from test_server_api import ADMIN, SERVER, api
from videoroomd.cluster import room_calls
from videoroomd.cluster.room_calls import TIMEOUT
from videoroomd.rooms.moderation import ModerationRefused, parse_request


def config(url: str, node: str, store) -> str:
    return (f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'
            f'[recording]\ndirectory = "{store}"\n[rooms.lobby]\nrecording = "manual"\nmax_peers = 5\n')


@pytest.mark.slow
async def test_the_api_of_one_node_sees_and_acts_on_a_room_that_runs_on_another(tmp_path, start_daemon, redis_server):
    redis_server.command("FLUSHALL")
    store = tmp_path / "recordings"
    store.mkdir()
    node_b = start_daemon(rooms=config(redis_server.url, "node-b", store), server=SERVER, name="b.toml")
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_daemon(tmp_path, config(redis_server.url, "node-a", store),
                                                           server=SERVER))
        with trio.fail_after(5):
            await a.cluster.bus.subscribed.wait()
        assert a.rooms.get("lobby") is None  # node B claimed it first
        media = await stack.enter_async_context(media_thread())
        speaker = await stack.enter_async_context(bot(_port(node_b), "Speaker", "lobby", media))
        viewer = await stack.enter_async_context(bot(a, "Viewer", "lobby", media))
        # Asked on node A: the room and its people, as node B has them.
        status, room = await api(a.port, "GET", "/api/v1/rooms/lobby")
        assert status == 200 and room["node"] == "node-b", room
        assert {p["name"]: p["id"] for p in room["participants"]} == {"Speaker": speaker.id, "Viewer": viewer.id}
        status, listed = await api(a.port, "GET", "/api/v1/rooms")
        assert status == 200 and "unreachable" not in listed, listed
        row = next(row for row in listed["rooms"] if row["name"] == "lobby")
        assert row["node"] == "node-b" and len(row["participants"]) == 2 and row["max_peers"] == 5
        listed = await trio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "videoroomd", "room", "list", "--config", str(node_b.config)],
            capture_output=True, text=True, timeout=30))
        assert listed.returncode == 0 and listed.stdout.split("\n")[0].split() == ["ROOM", "STATUS", "NODE", "PEOPLE"]
        assert f"node-b           Speaker ({speaker.id}), Viewer ({viewer.id})" in listed.stdout, listed.stdout
        # Refusals come back as node B words them, with the same status.
        status, body = await api(a.port, "POST", "/api/v1/rooms/lobby/participants/nobody/mute")
        assert status == 404 and body["error"]["code"] == "no_such_peer", body
        status, body = await api(a.port, "GET", "/api/v1/rooms/nowhere")
        assert status == 404 and body["error"]["code"] == "no_such_room", body
        status, body = await api(a.port, "POST", "/api/v1/rooms", {"name": "lobby"})
        assert status == 409 and "node-b" in body["error"]["message"], body
        # Muted through node A: told, and node B's room stops forwarding the speaker's audio.
        audio_id, video_id = await speaker.publish()
        await viewer.frames_from(audio_id, at_least=25)
        status, done = await api(a.port, "POST", f"/api/v1/rooms/lobby/participants/{speaker.id}/mute")
        assert status == 200 and (done["action"], done["peer"]) == ("mute", speaker.id), done
        told = await until(lambda: next((p for e, p in speaker.client.pushes if e == "moderated"), None))
        assert (told["action"], told["by"]) == ("mute", "the server")
        await trio.sleep(0.5)  # what was on its way
        audio, video = viewer.received[audio_id], viewer.received[video_id]
        await trio.sleep(1.5)
        assert viewer.received[audio_id] - audio <= 2 and viewer.received[video_id] > video
        # A recording of node B's room, started and stopped through node A.
        status, started = await api(a.port, "POST", "/api/v1/rooms/lobby/recording/start")
        assert status == 200 and started["recording"], started
        status, body = await api(a.port, "POST", "/api/v1/rooms/lobby/recording/start")
        assert status == 409 and "runs already" in body["error"]["message"], body
        assert await api(a.port, "POST", "/api/v1/rooms/lobby/recording/stop") == (200, started)
        # Removed through node A: the viewer (on node A) is told why and its channel ends.
        status, _ = await api(a.port, "POST", f"/api/v1/rooms/lobby/participants/{viewer.id}/remove",
                              {"reason": "lesson over"})
        assert status == 200
        closed = await until(lambda: next((p for e, p in viewer.client.pushes if e == "phx_close"), None))
        assert closed["reason"] == "removed by the server: lesson over"
        # A room made on node B, then node B stopped: node A names it within the deadline.
        status, _ = await api(node_b.port, "POST", "/api/v1/rooms", {"name": "hall", "empty_timeout": 600})
        assert status == 201
        await until(lambda: any(r["name"] == "hall" for r in a.cluster.service.snapshot()))
        # Ended through node A: everyone in node B's room is told.
        status, done = await api(a.port, "POST", "/api/v1/rooms/lobby/end", {"reason": "bye"})
        assert status == 200 and done["action"] == "end", done
        closed = await until(lambda: next((p for e, p in speaker.client.pushes if e == "phx_close"), None))
        assert closed["reason"] == "the meeting was ended by the server: bye"
        answers = await _asked_while_stopped(a, node_b, ("POST", "/api/v1/rooms/hall/end"), ("GET", "/api/v1/rooms"))
        status, body = answers["/api/v1/rooms/hall/end"]
        assert status in (503, 504) and "node 'node-b'" in body["error"]["message"], body
        assert sample(a.metrics.render().decode(), "videoroomd_cluster_api_calls_failed_total", why="timeout") >= 1
        status, listed = answers["/api/v1/rooms"]
        assert status == 200 and [u["node"] for u in listed["unreachable"]] == ["node-b"], listed
        hall = next(row for row in listed["rooms"] if row["name"] == "hall")
        assert hall["node"] == "node-b" and hall["participants"] is None
        assert ADMIN not in json.dumps(listed)


async def _asked_while_stopped(a, node_b, *requests: tuple[str, str]) -> dict[str, tuple[int, dict]]:
    """Node A's answers to ``requests`` (method, path), asked at once while node B's process is stopped
    (SIGSTOP: alive, listed, silent); each within the deadline."""
    answers = {}

    async def ask(method: str, path: str) -> None:
        answers[path] = await api(a.port, method, path)

    node_b.proc.send_signal(signal.SIGSTOP)
    try:
        started_at = trio.current_time()
        async with trio.open_nursery() as nursery:
            for method, path in requests:
                nursery.start_soon(ask, method, path)
        assert trio.current_time() - started_at < TIMEOUT + 2
    finally:
        node_b.proc.send_signal(signal.SIGCONT)
    return answers


async def _refused(call) -> ModerationRefused:
    with pytest.raises(ModerationRefused) as refused:
        await call
    return refused.value


async def test_the_api_calls_answer_alike_on_the_rooms_node_and_through_another_node(rooms):  # noqa: F811
    service = rooms.service
    link = await service.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    room = await service.room("lobby")
    assert [(p["id"], p["name"]) for p in room["participants"]] == [(link.id, "Ann")]
    listed = {row["name"]: row for row in (await service.rooms())["rooms"]}
    assert listed["lobby"]["participants"] == room["participants"] and listed["lobby"]["max_peers"] == 2
    assert (await _refused(service.room("nowhere"))).code == "no_such_room"
    refused = await _refused(service.moderate("lobby", parse_request({"action": "mute", "peer": "nobody"})))
    assert refused.code == "no_such_peer"
    assert (await _refused(service.record("lobby", "start"))).code == "recording_unavailable"
    done = await service.moderate("lobby", parse_request({"action": "remove", "peer": link.id, "reason": "bye"}))
    assert (done["action"], done["peer"]) == ("remove", link.id)
    assert (await ended(link)).reason == "removed by the server: bye"


async def test_calls_to_another_node_are_bounded_in_flight_in_size_in_time_and_in_what_it_carries_out(
        tmp_path, redis_server, redis_prefix, monkeypatch):
    async with redis_rooms(tmp_path, redis_server, redis_prefix) as harness:
        service = harness.service  # node A's; every room runs on node B
        monkeypatch.setattr(room_calls, "IN_FLIGHT", 2)
        answers = []

        async def ask() -> None:
            try:
                answers.append((await service.room("lobby"))["node"])
            except ModerationRefused as refused:
                answers.append(refused.code)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(ask)
        assert sorted(answers) == ["node-b"] * 2 + ["node_busy"] * 3
        monkeypatch.setattr(room_calls, "MAX_REPLY", 50)
        refused = await _refused(service.room("lobby"))
        assert refused.code == "reply_too_large" and "node 'node-b'" in refused.reason
        monkeypatch.setattr(room_calls, "SERVING", 0)
        refused = await _refused(service.room("lobby"))
        assert refused.code == "node_busy" and "node 'node-b'" in refused.reason
        service.calls.timeout = 0  # the reply comes too late, finds nobody waiting and is dropped
        refused = await _refused(service.room("lobby"))
        assert refused.reason == "node 'node-b', which runs room 'lobby', did not answer within 0 s"
        service.calls.timeout = room_calls.TIMEOUT
        monkeypatch.setattr(room_calls, "SERVING", 64)
        monkeypatch.setattr(room_calls, "MAX_REPLY", room_calls.MAX_MESSAGE)
        assert (await service.room("lobby"))["node"] == "node-b" and not service.calls._waiting
