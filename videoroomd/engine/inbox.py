"""What waits in a room engine's inbox: what a peer did, or what the room's media worker reported."""

from __future__ import annotations

from dataclasses import dataclass

from ..media.workers.events import RoomEvent, RoomLost


@dataclass(frozen=True)
class PeerLeft:
    endpoint: str


@dataclass(frozen=True)
class PeerEvent:
    endpoint: str
    data: str


Item = PeerLeft | PeerEvent | RoomEvent | RoomLost
