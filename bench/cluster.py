"""What a cluster asks of Redis: ``python -m bench.cluster [--nodes 3] [--rooms 10] [--idle 20]``.

Starts a ``redis-server`` of its own on a free loopback port and NODES
daemons in this process, each a node of one cluster (media on a thread:
Redis traffic does not depend on it). It reads Redis's own counters
(``INFO commandstats``, where the commands inside the Lua scripts count
too and one EVALSHA is one round trip; the bytes in and out) over three
phases: the nodes idle with no room; ROOMS joins of new dynamic rooms
through random nodes (each room claimed, joined, left and released); ROOMS
configured rooms running on one node, the heartbeats taken out. Prints a
line per phase, or JSON with ``--json``. (The dynamic rooms go where
placement puts them; the joins reach them over the participant link.)

``--calls`` measures calls instead (:mod:`.cluster_calls`): the cost of
the hop to the room's node in join → first frame, the placement spread of
a burst of new rooms, and the failover time after a SIGKILL, with bots.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import structlog
import trio
from trio_websocket import open_websocket_url

from videoroomd.cluster.redis_client import open_redis
from videoroomd.config import load, locate
from videoroomd.daemon.daemon import Daemon

from .daemon import free_port


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                                "--port", str(port), "--dir", str(folder)], stdout=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True).stdout.strip() == b"PONG":
            return process, port
        time.sleep(0.05)
    process.kill()
    raise SystemExit("bench.cluster: redis-server did not start")


async def redis_numbers(client) -> dict:
    """Commands run so far, by command, and bytes in and out (Redis's counters)."""
    stats = await client.info("stats")
    commands = await client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in commands.items()
             if name.startswith("cmdstat_")}
    return {"calls": calls, "in": int(stats["total_net_input_bytes"]), "out": int(stats["total_net_output_bytes"])}


def delta(before: dict, after: dict, scale: float = 1.0) -> dict:
    calls = {k: round((v - before["calls"].get(k, 0)) * scale, 1) for k, v in after["calls"].items()
             if v - before["calls"].get(k, 0) and k not in ("info",)}
    return {"commands": calls, "total": round(sum(calls.values()), 1),
            "bytes_in": round((after["in"] - before["in"]) * scale), "bytes_out": round((after["out"] - before["out"]) * scale)}


async def join(port: int, room: str) -> None:
    url = f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps(["1", "1", f"room:{room}", "phx_join", {"displayName": "bench"}]))
        while True:
            frame = json.loads(await ws.get_message())
            if frame[3] == "phx_reply":
                if frame[4]["status"] != "ok":
                    raise SystemExit(f"bench.cluster: join of {room} refused: {frame[4]}")
                return


async def chat_burst(port: int, room: str, count: int) -> None:
    """Join ``room`` through the node at ``port`` and send ``count`` chat messages (within the burst a
    person may send at once), each answered."""
    url = f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps(["1", "1", f"room:{room}", "phx_join", {"displayName": "bench"}]))
        for n in range(count):
            await ws.send_message(json.dumps(["1", str(n + 2), f"room:{room}", "chat", {"text": f"message {n}"}]))
        answered = 0
        while answered < count + 1:
            frame = json.loads(await ws.get_message())
            if frame[3] == "phx_reply":
                if frame[4]["status"] != "ok":
                    raise SystemExit(f"bench.cluster: refused in {room}: {frame[4]}")
                answered += 1


async def measure(args, folder: Path, redis_port: int) -> dict:
    url = f"redis://127.0.0.1:{redis_port}/0"
    results = {}
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(open_redis(url))
        nursery = await stack.enter_async_context(trio.open_nursery())
        daemons = []
        for index in range(args.nodes):
            path = folder / f"node{index}.toml"
            path.write_text(f'[server]\nlisten = "127.0.0.1:0"\ndynamic_rooms = true\nmax_dynamic_rooms = 1000\n'
                            f'[media]\nworkers = 0\n[cluster]\nredis = "{url}"\nnode_id = "node{index}"\n')
            daemon = Daemon(locate(str(path)), load(locate(str(path))), watch_interval=0)
            await nursery.start(daemon.run)
            daemons.append(daemon)
        await trio.sleep(1)
        before = await redis_numbers(client)
        await trio.sleep(args.idle)
        results[f"{args.nodes} idle nodes, per minute"] = delta(before, await redis_numbers(client), 60 / args.idle)

        before = await redis_numbers(client)
        for n in range(args.rooms):  # each join makes a dynamic room on the node it reached; it closes when left
            await join(random.choice(daemons).address[1], f"dyn{n}")
        while any(d.rooms.entries for d in daemons):
            await trio.sleep(0.05)
        results["per join of a new room (claim, join, leave, release)"] = delta(
            before, await redis_numbers(client), 1 / max(args.rooms, 1))

        first = daemons[0]  # ROOMS configured rooms on the first node, by a reload
        rooms = "".join(f"[rooms.fixed{n}]\n" for n in range(args.rooms))
        path = folder / "node0.toml"
        path.write_text(path.read_text() + rooms)
        first.rooms.apply(load(locate(str(path))), 0)
        while sum(1 for e in first.rooms.entries.values() if e.lease is not None) < args.rooms:
            await trio.sleep(0.05)
        before = await redis_numbers(client)
        await trio.sleep(args.idle)
        with_rooms = delta(before, await redis_numbers(client), 60 / args.idle / max(args.rooms, 1))
        results["per idle room, per minute (its node's heartbeat not counted)"] = with_rooms

        senders = 4  # each sends 5 messages (the burst a person may send) through a node the room is not on
        before, started = await redis_numbers(client), trio.current_time()
        for sender in range(senders):
            await chat_burst(daemons[1 + sender % (args.nodes - 1)].address[1], "fixed0", 5)
        chat = delta(before, await redis_numbers(client), 1 / (senders * 5))
        results["per chat message through another node (its join and leave, and the heartbeats, included)"] = chat
        chat["seconds"] = round(trio.current_time() - started, 2)
        nursery.cancel_scope.cancel()
    idle = results[f"{args.nodes} idle nodes, per minute"]
    per_node = idle["total"] / args.nodes  # the heartbeat's share, taken out of the per-room figure
    with_rooms["total"] = round(with_rooms["total"] - per_node * args.nodes / max(args.rooms, 1), 1)
    with_rooms["commands"] = {"(lease renewals)": with_rooms["total"]}
    with_rooms["bytes_in"] -= round(idle["bytes_in"] / max(args.rooms, 1))
    with_rooms["bytes_out"] -= round(idle["bytes_out"] / max(args.rooms, 1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds each idle phase is counted")
    parser.add_argument("--json", dest="as_json", action="store_true")
    parser.add_argument("--calls", action="store_true", help="measure calls (bench.cluster_calls) instead")
    parser.add_argument("--samples", type=int, default=10, help="--calls: joins through each kind of node")
    parser.add_argument("--spread-rooms", type=int, default=60, help="--calls: rooms created at once")
    parser.add_argument("--failovers", type=int, default=3, help="--calls: SIGKILLs of the room's node")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.calls:
        from . import cluster_calls

        json.dump(cluster_calls.run(args, start_redis), sys.stdout, indent=2)
        print()
        return
    with tempfile.TemporaryDirectory() as folder:
        process, port = start_redis(Path(folder))
        try:
            results = trio.run(measure, args, Path(folder), port)
        finally:
            process.terminate()
            process.wait()
    if args.as_json:
        json.dump(results, sys.stdout, indent=2)
        return
    for phase, row in results.items():
        commands = ", ".join(f"{k} {v:g}" for k, v in sorted(row["commands"].items()))
        print(f"{phase}: {row['total']:g} commands ({commands}); {row['bytes_in']} B in, {row['bytes_out']} B out")


if __name__ == "__main__":
    main()
