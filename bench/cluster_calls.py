"""Calls in a cluster: ``python -m bench.cluster --calls [--samples 10] [--spread-rooms 60] [--failovers 3]``.

Three daemons (``videoroomd serve`` processes, one media worker each, the
default lease and heartbeat timings) on a ``redis-server`` of its own, and
aiortc bots (testsupport.media_bot) on one asyncio thread of this process:

- **the hop**: a bot publishes on the room's node; another joins, SAMPLES
  times each, through the room's node and through another node, and the
  time from its join to the first decoded frame of the publisher's video is
  taken (p50 / p95 of each, and their difference: the cost of the link
  carried over Redis);
- **placement spread**: SPREAD_ROOMS dynamic rooms created at once through
  random nodes, and how many each node got (from the rooms' leases);
- **failover**: a publisher and a subscriber on the two nodes that do not
  run the room; the room's node is SIGKILLed, both join again as soon as
  they can (as the page does) and the time from the kill to the first frame
  on the new room's node is taken, FAILOVERS times (the killed node started
  again between rounds).
"""

from __future__ import annotations

import random
import statistics
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import trio

from testsupport.daemon import DaemonProcess, config_text, free_port
from testsupport.media_bot import bot, media_thread
from testsupport.phoenix import phoenix_client
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import RedisRoomDirectory

NODES = ("node-a", "node-b", "node-c")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def start_node(folder: Path, redis_url: str, node: str, port: int | None = None) -> DaemonProcess:
    port = port or free_port()
    path = folder / f"{node}.toml"
    rooms = (f'[cluster]\nredis = "{redis_url}"\nnode_id = "{node}"\n[ice]\naddresses = ["127.0.0.1"]\n'
             "[rooms.lobby]\nmax_peers = 8\n")
    text = config_text(rooms, port=port, server="dynamic_rooms = true\nmax_dynamic_rooms = 1000", media="workers = 1")
    path.write_text(text.replace('level = "debug"', 'level = "warning"'))
    daemon = DaemonProcess(path, port)
    daemon.wait_healthy(30)
    return daemon


async def owner(client, room: str = "lobby") -> str | None:
    lease = await RedisRoomDirectory(client).lookup(room)
    return None if lease is None else lease.owner


async def first_frame(daemon, name: str, video: str, media) -> float:
    """Milliseconds from ``name``'s join through ``daemon`` to its first frame of track ``video``."""
    started = trio.current_time()
    async with bot(daemon, name, media=media) as subscriber:
        await subscriber.frames_from(video, at_least=1, timeout=30)
        return (trio.current_time() - started) * 1000


async def hop(daemons: dict, client, samples: int, media) -> dict:
    home = daemons[await owner(client)]
    other = next(d for d in daemons.values() if d is not home)
    taken: dict[str, list[float]] = {"room's node": [], "another node": []}
    async with bot(home, "publisher", media=media) as publisher:
        _, video = await publisher.publish()
        for n in range(samples):
            for label, node in (("room's node", home), ("another node", other)):
                taken[label].append(await first_frame(node, f"sub{n}", video, media))
    rows = {label: {"p50_ms": round(statistics.median(v)), "p95_ms": round(percentile(v, 0.95)), "n": len(v)}
            for label, v in taken.items()}
    rows["hop"] = {key: rows["another node"][key] - rows["room's node"][key] for key in ("p50_ms", "p95_ms")}
    return rows


async def spread(daemons: dict, client, rooms: int) -> dict:
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(phoenix_client(random.choice(list(daemons.values()))))
                   for _ in range(rooms)]
        replies: list[str] = []

        async def join(n: int) -> None:
            replies.append((await clients[n].join(f"spread{n}", displayName="x", timeout=30))["status"])

        async with trio.open_nursery() as nursery:
            for n in range(rooms):
                nursery.start_soon(join, n)
        directory = RedisRoomDirectory(client)
        counts = {node: 0 for node in daemons}
        for lease in await directory.leases():
            if lease.room.startswith("spread"):
                counts[lease.owner] += 1
    return {"rooms": rooms, "joined": replies.count("ok"), "per_node": counts,
            "worst_vs_even": round(max(abs(c - rooms / len(daemons)) for c in counts.values()) / (rooms / len(daemons)), 3)}


async def rejoin(daemon, name: str, media, stack: AsyncExitStack, deadline: float):
    """A bot of ``name`` in lobby through ``daemon``, joining again every 0.2 s until it is in."""
    while True:
        try:
            return await stack.enter_async_context(bot(daemon, name, media=media))
        except AssertionError:  # refused for now (the room is moving)
            if trio.current_time() > deadline:
                raise
            await trio.sleep(0.2)


async def failover(daemons: dict, folder: Path, redis_url: str, client, rounds: int, media) -> dict:
    took = []
    for _ in range(rounds):
        dead = await owner(client)
        survivors = [d for node, d in daemons.items() if node != dead]
        async with AsyncExitStack() as before:
            publisher = await before.enter_async_context(bot(survivors[0], "pub", media=media))
            subscriber = await before.enter_async_context(bot(survivors[1], "sub", media=media))
            _, video = await publisher.publish()
            await subscriber.frames_from(video, at_least=10, timeout=30)
            daemons[dead].proc.kill()
            killed = trio.current_time()
        async with AsyncExitStack() as after:
            publisher = await rejoin(survivors[0], "pub", media, after, killed + 30)
            subscriber = await rejoin(survivors[1], "sub", media, after, killed + 30)
            _, video = await publisher.publish()
            await subscriber.frames_from(video, at_least=1, timeout=30)
            took.append(trio.current_time() - killed)
        daemons[dead].stop()
        daemons[dead] = await trio.to_thread.run_sync(start_node, folder, redis_url, dead)
    return {"seconds": [round(t, 1) for t in took], "median_s": round(statistics.median(took), 1), "max_s": round(max(took), 1)}


async def measure(args, folder: Path, redis_port: int) -> dict:
    url = f"redis://127.0.0.1:{redis_port}/0"
    daemons = {}
    try:
        for node in NODES:
            daemons[node] = await trio.to_thread.run_sync(start_node, folder, url, node)
        async with open_redis(url) as client, media_thread() as media:
            results = {"hop": await hop(daemons, client, args.samples, media)}
            results["spread"] = await spread(daemons, client, args.spread_rooms)
            await trio.sleep(3)  # the spread's rooms closed
            results["failover"] = await failover(daemons, folder, url, client, args.failovers, media)
        return results
    finally:
        for daemon in daemons.values():
            daemon.stop()


def run(args, start_redis) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        process, port = start_redis(Path(folder))
        try:
            return trio.run(measure, args, Path(folder), port)
        finally:
            process.terminate()
            process.wait()
