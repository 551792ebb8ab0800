"""What an HTTP, socket or page handler may read of the running daemon: a small, frozen :class:`Context`.

Handlers get this instead of the daemon itself, so that they import neither
the daemon nor each other, and a handler can be run against a context made
for it. It may import the config, the metrics, the room service's seam and
the TURN credentials; never the daemon, a handler or a room's insides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .config import Config
from .metrics import Metrics
from .rooms.link import RoomService
from .turn.clients import TurnCredentials


class MediaCheckRefused(Exception):
    """A connectivity check's offer not answered: ``status`` (the HTTP status), and a reason a person can read."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _no_media_check(sdp: str, address: str, relay_user: str | None) -> str:
    raise MediaCheckRefused(503, "this server runs no media check")


@dataclass(frozen=True)
class Context:
    """The daemon as its handlers see it; the getters read what a reload or a drain changes."""

    config: Callable[[], Config]          # the configuration now (a reload replaces it)
    metrics: Metrics
    draining: Callable[[], bool]          # a stop has begun: no new joins, /healthz says 503
    rooms: RoomService
    turn: TurnCredentials                 # the built-in TURN server's endpoints, once bound (the check page)
    media_snapshot: Callable[[], list[dict[str, Any]]]  # the media workers, for the admin view
    degraded: Callable[[], str | None] = lambda: None  # what does not work now while calls go on (/healthz)
    # The check page's peer connections: (offer SDP, client address, the check's TURN user when it
    # comes through the built-in relay) -> answer SDP; raises MediaCheckRefused.
    media_check: Callable[[str, str, str | None], Awaitable[str]] = _no_media_check
