"""Rooms: the peers of one call, their limits, and dispatch between them and the engine."""

from .room import JoinRefused, Peer, Room
from .registry import RoomRegistry

__all__ = ["JoinRefused", "Peer", "Room", "RoomRegistry"]
