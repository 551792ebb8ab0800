"""Churn of real media participants against a daemon whose media runs in a worker process:
participants join, publish and receive, and then some leave properly while the others are
killed (their TCP connection dropped, their media stopped without a word). Afterwards the
room, the worker's connections, its open files and its memory are back at their level."""

from __future__ import annotations

import os

import pytest
import trio

from testsupport.media_bot import Bot, media_thread
from testsupport.phoenix import phoenix_client
from videoroomd.media.workers.commands import ListEndpoints

pytestmark = pytest.mark.slow

ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 16\n'
SERVER = "connections_per_second = 1000\n"
ROUNDS = 6
RSS_TOLERANCE_KB = 16 * 1024


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def one_round(daemon, media, number: int) -> None:
    """Three participants publish video and each receives the other two; then one leaves
    and two are killed."""
    async with trio.open_nursery() as connections:
        clients = [await connections.start(_client, daemon) for _ in range(3)]
        bots = []
        async with trio.open_nursery() as pumps:
            for index, client in enumerate(clients):
                reply = await client.join("lobby", displayName=f"r{number}-{index}")
                assert reply["status"] == "ok", reply
                bot = Bot(client, "lobby", f"r{number}-{index}", media)
                pumps.start_soon(bot.pump)
                await bot.connect()
                bots.append(bot)
            videos = [(await bot.publish(audio=False))[0] for bot in bots]
            for viewer in bots:
                for video in videos:
                    if video not in viewer.local:
                        await viewer.frames_from(video, at_least=5)
            pumps.cancel_scope.cancel()
        await bots[0].send({"type": "disconnect"})  # leaves properly
        for bot in bots:
            await bot.close()  # its media stops without a word
        for client in clients[1:]:
            await trio.aclose_forcefully(client.ws._stream)  # killed: the connection just drops
        connections.cancel_scope.cancel()


async def _client(daemon, *, task_status=trio.TASK_STATUS_IGNORED):
    async with phoenix_client(daemon) as client:
        task_status.started(client)
        await trio.sleep_forever()


async def settled(daemon, link_endpoints) -> None:
    with trio.fail_after(30):
        while True:
            room = next(r for r in daemon.rooms.snapshot() if r["name"] == "lobby")
            if room["peers"] == 0 and room["tracks"] == 0 and not await link_endpoints():
                return
            await trio.sleep(0.2)


@pytest.mark.parametrize("plane", ["python", "native"])
async def test_killed_participants_leave_nothing_behind_in_the_media_worker(tmp_path, plane):
    """(On the native plane each connection's route holds a socket of its own, closed with the connection.)"""
    from testsupport.signalling_helpers import running_daemon

    async with (running_daemon(tmp_path, ROOMS, server=SERVER, media=f'workers = 1\ndata_plane = "{plane}"') as daemon,
                media_thread() as media):
        engine = daemon.rooms.get("lobby").engine

        async def endpoints():
            return await engine.link.call(ListEndpoints(engine.link.key), timeout=5)

        worker = daemon.media.workers[0]
        await one_round(daemon, media, 0)  # imports, caches and pools reach their size
        await settled(daemon, endpoints)
        await trio.sleep(1)
        fds, rss = fd_count(worker.pid), rss_kb(worker.pid)
        for number in range(1, ROUNDS + 1):
            await one_round(daemon, media, number)
        await settled(daemon, endpoints)
        with trio.fail_after(15):  # sockets of the closed connections are closed too
            while fd_count(worker.pid) > fds + 2:
                await trio.sleep(0.2)
        await trio.sleep(1)
        grown = rss_kb(worker.pid) - rss
        assert grown < RSS_TOLERANCE_KB, f"the worker's RSS grew by {grown} kB over {ROUNDS} rounds"
        assert daemon.media.snapshot()[0]["restarts"] == 0


def scraped(daemon, name: str, **labels: str) -> float | None:
    """Sample ``name`` (with ``labels``) of the daemon's /metrics, None when it is not there."""
    import re
    import urllib.request

    page = urllib.request.urlopen(daemon.url + "/metrics", timeout=5).read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search("^" + re.escape(name + (f"{{{wanted}}}" if wanted else "")) + r" (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_the_process_tree_keeps_no_memory_of_participants_killed_mid_call(start_daemon):
    """The daemon in a process of its own with two media workers: /metrics reads the RSS of
    each worker and of the whole process tree, and after rounds of churn (participants killed
    while their media flows) the tree is back near its level."""
    # A second room, so that the second worker starts (a worker starts when a room is first placed on it).
    daemon = start_daemon(rooms=ROOMS + "[rooms.hall]\nmax_peers = 4\n", server=SERVER, media="workers = 2")

    async def settled() -> None:
        with trio.fail_after(30):
            while scraped(daemon, "videoroomd_peers", room="lobby", kind="rtc") or scraped(
                    daemon, "videoroomd_tracks", room="lobby"):
                await trio.sleep(0.2)
        await trio.sleep(2)  # the workers close the connections the engine removed

    async with media_thread() as media:
        for warm_up in range(3):  # imports, caches, pools and the allocator's arenas reach their size
            await one_round(daemon, media, -1 - warm_up)
        await settled()
        tree = scraped(daemon, "videoroomd_process_tree_resident_bytes")
        workers = [scraped(daemon, "videoroomd_media_worker_resident_bytes", worker=w) for w in ("1", "2")]
        assert tree and all(workers) and tree > sum(workers)  # the daemon itself, and both workers
        for number in range(1, ROUNDS + 1):
            await one_round(daemon, media, number)
        await settled()
    grown = (scraped(daemon, "videoroomd_process_tree_resident_bytes") - tree) // 1024
    assert grown < RSS_TOLERANCE_KB, f"the process tree's RSS grew by {grown} kB over {ROUNDS} rounds"
    daemon.wait_healthy()
