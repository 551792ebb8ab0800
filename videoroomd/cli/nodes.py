"""What `videoroomd nodes` prints: the cluster's live nodes and their load, read from Redis."""

from __future__ import annotations

import time

import trio

from ..cluster.records import NodeLoad
from ..rooms.directory import Lease

ASK_TIMEOUT = 5.0  # seconds to wait for Redis
HEADERS = ("NODE", "ADDRESS", "STATE", "WORKERS", "ROOMS", "PEOPLE", "CPU", "SEEN")


async def read_nodes(url: str) -> list[NodeLoad]:
    """The live nodes on the Redis at ``url``; raises RedisMissing, trio.TooSlowError, or the client's error."""
    from ..cluster.redis_client import open_redis
    from ..cluster.redis_nodes import RedisNodeDirectory

    with trio.fail_after(ASK_TIMEOUT):
        async with open_redis(url) as client:
            return await RedisNodeDirectory(client).nodes()


async def read_rooms(url: str) -> list[Lease]:
    """The leases of every room running in the cluster at ``url``; raises as :func:`read_nodes`."""
    from ..cluster.redis_client import open_redis
    from ..cluster.redis_directory import RedisRoomDirectory

    with trio.fail_after(ASK_TIMEOUT):
        async with open_redis(url) as client:
            return await RedisRoomDirectory(client).leases()


def room_rows(leases: list[Lease]) -> list[dict]:
    """Each room as ``--rooms --json`` prints it."""
    return [{"room": lease.room, "node": lease.owner, "worker": lease.worker, "token": lease.token} for lease in leases]


def as_row(load: NodeLoad, now: float) -> dict:
    """One node as ``--json`` prints it."""
    return {"node": load.node, "advertise": load.advertise, "draining": load.draining, "workers": load.workers,
            "rooms": load.rooms, "participants": load.participants, "cpu": round(load.cpu, 2),
            "seen_s_ago": round(max(0.0, now - load.at), 1)}


def table(loads: list[NodeLoad], now: float | None = None) -> list[str]:
    """The lines of the table of nodes (pure)."""
    now = time.time() if now is None else now
    return _aligned([HEADERS] + [
        (n.node, n.advertise or "-", "draining" if n.draining else "serving", str(n.workers), str(n.rooms),
         str(n.participants), f"{n.cpu:.2f}", f"{max(0.0, now - n.at):.1f}s ago")
        for n in loads
    ])


def rooms_table(leases: list[Lease]) -> list[str]:
    """The lines of the table of rooms and the node each runs on (pure)."""
    return _aligned([("ROOM", "NODE", "WORKER")] + [(l.room, l.owner, l.worker or "-") for l in leases])


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]
