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


async def test_killed_participants_leave_nothing_behind_in_the_media_worker(tmp_path):
    from testsupport.signalling_helpers import running_daemon

    async with running_daemon(tmp_path, ROOMS, server=SERVER, media="workers = 1") as daemon, media_thread() as media:
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
