"""Which tracks a room's listeners (webhooks) were told of: each published once, unpublished once.

The engine calls :meth:`TrackNews.answered` after each answer (the tracks
the offer started and stopped sending) and :meth:`TrackNews.left` when a
participant leaves the room, before the room tells of the leaving: its
tracks end first, as they do for the others in the call.
"""

from __future__ import annotations

from typing import Any

from ..rooms.events import participant
from ..rooms.room import Peer, Room
from .session import Plan, Track, is_screen


def _track(track: Track) -> dict[str, Any]:
    """A track as an event names it: its id, kind, and source as a grant names it (audio, video, screen)."""
    return {"id": track.id, "kind": track.kind, "source": "screen" if is_screen(track.metadata) else track.kind}


class TrackNews:
    """The tracks told as published, per participant, until told as unpublished."""

    def __init__(self) -> None:
        self._told: dict[str, dict[str, dict[str, Any]]] = {}

    def answered(self, room: Room, peer: Peer, plan: Plan) -> None:
        """``peer``'s offer was answered: tell of the tracks it stopped, then of those it started."""
        if room.peers.get(peer.id) is not peer:  # it left while its offer was answered: told of already
            return
        told = self._told.setdefault(peer.id, {})
        for track in plan.unpublish:
            if told.pop(track.id, None) is not None:
                room.events.emit("track.unpublished", room.name, participant=participant(peer), track=_track(track))
        for track in plan.publish:
            if track.id not in told:
                told[track.id] = _track(track)
                room.events.emit("track.published", room.name, participant=participant(peer), track=told[track.id])

    def left(self, room: Room | None, peer: Peer) -> None:
        """``peer`` left the room: each of its tracks still told as published ends now."""
        if room is None:  # an engine that never ran has told of no track
            return
        for described in self._told.pop(peer.id, {}).values():
            room.events.emit("track.unpublished", room.name, participant=participant(peer), track=described)
