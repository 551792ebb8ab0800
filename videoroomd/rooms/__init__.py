"""Rooms: the peers of one call, their limits, and dispatch between them and the engine.

Also the three seams around them: the admission gate (``admission``: may this
join go in), the room directory (``directory``: who runs which room, by lease)
and the supervisor table (``registry``: the rooms this daemon runs). Imports
config, the daemon's supervisor, the token buckets and the rate-limited log;
never signalling, http or media.
"""

from .admission import AdmissionGate, JoinRefused
from .directory import Lease, LeaseLost, LeaseTable, LocalRoomDirectory, RoomDirectory, RoomTaken
from .room import Peer, Room
from .registry import RoomRegistry

__all__ = [
    "AdmissionGate", "JoinRefused", "Lease", "LeaseLost", "LeaseTable", "LocalRoomDirectory", "Peer", "Room",
    "RoomDirectory", "RoomRegistry", "RoomTaken",
]
