"""The TURN server's way to the media workers it hands relayed clients to (trio; control side).

Once a client has a permission for a media socket of worker W, its transport
(the UDP 5-tuple or the TCP connection) is passed to W, which relays its
data itself (:mod:`videoroomd.turn.worker_relay`): no trip through the
daemon's loop and no second trip through the kernel per relayed datagram.
:class:`WorkerHandoff` finds W (the media-address registry knows which
worker each media socket is open in), passes the socket, posts the
allocation's later states, and adds the workers' relay counters up.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import trio

from ..media.workers.client import MediaError, WorkerLost
from ..media.workers.commands import Command, HandedAllocation
from ..media.workers.events import TurnEvent, TurnLost
from ..media.workers.plane import MediaPlane
from .peers import MediaAddresses

HANDOFF_TIMEOUT = 5.0  # seconds for a worker to take a client's socket
HANDOFF_FAILED = (MediaError, WorkerLost, trio.TooSlowError, OSError)  # what hand() raises


class WorkerHandoff:
    """Hands TURN clients to the media workers of ``plane``; their events go to ``on_event(worker, message)``."""

    def __init__(self, plane: MediaPlane, media_addresses: MediaAddresses, on_event: Callable[[str, TurnEvent], None]):
        self.plane = plane
        self.media_addresses = media_addresses
        self.retired: dict[str, Counter] = {"relayed": Counter(), "dropped": Counter()}  # of workers gone since
        self.on_event = on_event
        plane.turn_events = self._event

    def _event(self, worker: str, message: TurnEvent) -> None:
        if isinstance(message, TurnLost):
            counters = message.counters
            for part in ("relayed", "dropped"):
                self.retired[part].update(counters.get(part) or {})
        self.on_event(worker, message)

    def worker_for(self, peer: tuple[str, int]) -> str | None:
        """The running media worker whose media socket ``peer`` is, if any."""
        name = self.media_addresses.owner(*peer)
        return name if name is not None and self.plane.running(name) is not None else None

    async def hand(self, worker: str, fd: int, allocation: HandedAllocation) -> None:
        """Pass socket ``fd`` (the caller keeps and closes its own) and the allocation to ``worker``;
        raises one of HANDOFF_FAILED when it did not take them."""
        running = self.plane.running(worker)
        if running is None:
            raise WorkerLost(f"media worker {worker} is not running")
        await running.hand_turn(fd, allocation, timeout=HANDOFF_TIMEOUT)

    def post(self, worker: str, command: Command) -> None:
        """Send ``worker`` a TURN command without waiting (in order with the others); a worker gone is skipped."""
        running = self.plane.running(worker)
        if running is not None:
            running.post_turn(command)

    def counters(self) -> dict[str, Counter]:
        """Packets the workers relayed (``relayed``: to_peer, to_client) and dropped (by reason), since start."""
        total = {part: Counter(values) for part, values in self.retired.items()}
        for worker in self.plane.workers:
            if worker is None:
                continue
            for part in ("relayed", "dropped"):
                total[part].update(worker.turn_counters.get(part) or {})
        return total
