"""A daemon with two media worker processes: rooms spread over them, a killed worker, a stop."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest
import trio
from trio_websocket import ConnectionClosed

from testsupport.media_bot import bot, media_thread
from testsupport.metrics import read

ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.red]\nmax_peers = 4\n[rooms.blue]\nmax_peers = 4\n'
SERVER = "connections_per_second = 1000\ndrain_timeout = 1\n"


def admin(daemon) -> dict:
    with urllib.request.urlopen(f"{daemon.url}/admin/rooms", timeout=5) as response:
        return json.load(response)


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


async def call_of_two(daemon, media, room: str, nursery_stack):
    """Two bots in ``room``, each receiving the other's video; returns (a, b, a_video, b_video)."""
    a = await nursery_stack.enter_async_context(bot(daemon, f"{room}-a", room=room, media=media))
    b = await nursery_stack.enter_async_context(bot(daemon, f"{room}-b", room=room, media=media))
    (a_video,) = await a.publish(audio=False)
    (b_video,) = await b.publish(audio=False)
    await a.frames_from(b_video, at_least=5)
    await b.frames_from(a_video, at_least=5)
    return a, b, a_video, b_video


@pytest.mark.slow
async def test_a_killed_worker_ends_only_its_rooms_calls_and_they_come_back(start_daemon):
    from contextlib import AsyncExitStack

    daemon = start_daemon(rooms=ROOMS, server=SERVER, media="workers = 2")
    async with media_thread() as media, AsyncExitStack() as stack:
        red_a, red_b, _, _ = await call_of_two(daemon, media, "red", stack)
        blue_a, blue_b, blue_a_video, blue_b_video = await call_of_two(daemon, media, "blue", stack)
        state = admin(daemon)
        worker_of = {row["name"]: row["worker"] for row in state["rooms"]}
        assert worker_of["red"] != worker_of["blue"]  # one room per worker while both carry one
        pids = {row["worker"]: row["pid"] for row in state["media_workers"]}
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()

        os.kill(pids[worker_of["red"]], signal.SIGKILL)
        with trio.fail_after(10):  # red's people are told to reconnect ...
            while not all(any(event == "phx_close" and payload.get("retry") for event, payload in p.client.pushes)
                          for p in (red_a, red_b)):
                await trio.sleep(0.1)
        for viewer, track in ((blue_a, blue_b_video), (blue_b, blue_a_video)):  # ... blue never notices
            await viewer.frames_from(track, at_least=viewer.received[track] + 15)
        assert all(event != "phx_close" for p in (blue_a, blue_b) for event, _ in p.client.pushes)

        # red takes people again, on a worker that runs, and their media flows
        again_a, again_b, _, _ = await call_of_two(daemon, media, "red", stack)
        # The call may have been placed on blue's worker while red's was still starting again
        # (its restart waits a backoff): the killed worker comes back within a few seconds.
        with trio.fail_after(10):
            while True:
                workers = {row["worker"]: row for row in admin(daemon)["media_workers"]}
                if workers[worker_of["red"]]["running"]:
                    break
                await trio.sleep(0.1)
        assert workers[worker_of["red"]]["restarts"] == 1
        assert workers[worker_of["red"]]["pid"] != pids[worker_of["red"]]
        metrics = read(daemon)
        assert f'videoroomd_media_worker_restarts_total{{worker="{worker_of["red"]}"}} 1.0' in metrics
        assert f'videoroomd_media_worker_up{{worker="{worker_of["blue"]}"}} 1.0' in metrics


@pytest.mark.slow
async def test_a_stopped_daemon_leaves_no_worker_behind(start_daemon):
    daemon = start_daemon(rooms=ROOMS, server=SERVER, media="workers = 2")
    async with media_thread() as media:
        try:
            async with bot(daemon, "a", room="red", media=media) as a, bot(daemon, "b", room="red", media=media) as b:
                (video,) = await a.publish(audio=False)
                await b.frames_from(video, at_least=5)
                pids = [row["pid"] for row in admin(daemon)["media_workers"]]
                daemon.signal(signal.SIGTERM)  # with a call going on
                with trio.fail_after(20):
                    while daemon.proc.poll() is None:
                        await trio.sleep(0.1)
        except* ConnectionClosed:
            pass  # the bots' sockets closed under them: the server went away
    with trio.fail_after(20):
        while daemon.proc.poll() is None:
            await trio.sleep(0.1)
    assert daemon.proc.returncode == 0, daemon.log()[-3000:]
    assert all(gone(pid) for pid in pids), [pid for pid in pids if not gone(pid)]


@pytest.mark.slow
async def test_workers_die_with_a_daemon_that_is_killed(start_daemon):
    daemon = start_daemon(rooms=ROOMS, server=SERVER, media="workers = 2")
    await trio.sleep(11)  # longer than trio keeps an idle helper thread: the workers must outlive such threads
    pids = [row["pid"] for row in admin(daemon)["media_workers"]]
    assert len(set(pids)) == 2 and None not in pids  # its two rooms opened at start, one on each worker
    assert all(not gone(pid) for pid in pids)
    daemon.proc.kill()
    daemon.proc.wait()
    with trio.fail_after(10):
        while not all(gone(pid) for pid in pids):
            await trio.sleep(0.1)


async def test_a_second_worker_waits_for_a_room_and_the_daemon_is_healthy_meanwhile(start_daemon):
    daemon = start_daemon(rooms='[ice]\naddresses = ["127.0.0.1"]\n[rooms.red]\nmax_peers = 4\n', server=SERVER,
                          media="workers = 2")
    with urllib.request.urlopen(f"{daemon.url}/healthz", timeout=5) as response:
        assert response.read().strip() == b"ok"
    workers = admin(daemon)["media_workers"]
    assert [(row["worker"], row["running"], row["started"], row["pid"] is None) for row in workers] == [
        ("1", True, True, False), ("2", False, False, True)]  # red is on worker 1; no room needed worker 2
    assert sum(1 for pid in children_of(daemon.proc.pid)) == 1
    metrics = read(daemon)
    assert 'videoroomd_media_worker_up{worker="1"} 1.0' in metrics
    assert 'worker="2"' not in metrics  # no series of a worker that never ran (no false "down" alert)
    assert "videoroomd_media_workers_waiting 1.0" in metrics


def children_of(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as file:
            found += [int(child) for child in file.read().split()]
    return found
