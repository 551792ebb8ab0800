"""Every node's rooms for the operators of any node: ``/admin/rooms`` and ``videoroomd rooms --live``.

At every heartbeat interval a node stores the list of the rooms it runs in
Redis (with the lifetime of its load, so a dead node's list goes with it)
and reads the other live nodes' lists back in the same step
(:meth:`~.redis_nodes.RedisNodeDirectory.share_rooms`). What it read is kept
for the admin view, which answers at once, no older than a few intervals:
while Redis does not answer, only this node's own rooms are shown.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

import structlog
import trio

from .heartbeat import LIVES
from .records import RoomRow

log = structlog.get_logger("videoroomd.cluster")


class RoomLists(Protocol):
    async def share_rooms(self, node: str, rows: list[RoomRow], *, ttl: float) -> list[RoomRow]: ...


def room_row(node: str, row: dict[str, Any]) -> RoomRow:
    """A row of the registry's snapshot as the other nodes see it."""
    return RoomRow(row["name"], node, row["status"], bool(row["dynamic"]), row["peers"], row["relay_peers"],
                   row["tracks"], row["worker"])


class ClusterRoomView:
    """The rooms of the other nodes as last read (:meth:`others`), this node's ``local()`` shared every
    ``interval`` seconds while :meth:`run` runs."""

    def __init__(self, lists: RoomLists, node: str, local: Callable[[], list[dict[str, Any]]], interval: float,
                 clock: Callable[[], float] = trio.current_time):
        self.lists = lists
        self.node = node
        self.local = local
        self.interval = interval
        self.clock = clock
        self._others: list[RoomRow] = []
        self._read_at: float | None = None

    def others(self) -> list[RoomRow]:
        """The rooms the other live nodes run, sorted by name; none when the last read is too old."""
        if self._read_at is None or self.clock() - self._read_at > self.interval * LIVES:
            return []
        return self._others

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Share and read every interval until cancelled; ``started`` at once."""
        task_status.started()
        while True:
            await self.share()
            await trio.sleep(self.interval)

    async def share(self) -> bool:
        """Share this node's rooms and read the others' once; returns whether Redis answered."""
        rows = [room_row(self.node, row) for row in self.local()]
        try:
            with trio.fail_after(self.interval):
                found: Awaitable[list[RoomRow]] = self.lists.share_rooms(self.node, rows, ttl=self.interval * LIVES)
                others = await found
        except Exception as error:  # Redis away: the heartbeat says so; the view shows this node's rooms
            log.debug("room lists not shared", why=repr(error))
            return False
        self._others = sorted(others, key=lambda row: (row.name, row.node))
        self._read_at = self.clock()
        return True
