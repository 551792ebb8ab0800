"""The participant link over the rooms of this process: :class:`LocalRoomService` and :class:`LocalLink`.

A link wraps one :class:`~.room.Peer` of one :class:`~.room.Room`; sending
calls the room's dispatch directly, and what the room sends comes out of the
peer's bounded outbox. The relay's fan-out lives here, on the room side of
the seam: a relay participant's arrival and departure are announced to the
room's other relay participants, and its messages are routed to the ids
they name (or to everyone but the sender).
"""

from __future__ import annotations

from typing import Any

import trio

from ..auth.tokens import AccessToken
from ..config import RoomConfig
from .link import (ChatPost, Closure, FromRoom, MediaEvent, ModerationRequest, ParticipantLink, PeerJoined, PeerLeft,
                   RelaySend, RelayText, RoomSettings, ToRoom)
from .moderation import ModerationRefused
from .moderator import carry_out, moderate
from .registry import RoomRegistry, Waiting
from .room import Peer, Room

RELAY = "relay"


class LocalLink:
    """One participant of a room in this process (see :class:`~.link.ParticipantLink`)."""

    def __init__(self, room: Room, peer: Peer):
        self._room = room
        self._peer = peer
        self._left = False
        self.id = peer.id
        self.kind = peer.kind
        self.settings = RoomSettings(room.name, room.config.simulcast)
        self.moderator = peer.grants.moderate  # shown the moderation controls (docs/moderation.md)

    async def send(self, event: ToRoom) -> str | None:
        """Hand ``event`` to the room (see :meth:`.link.ParticipantLink.send`); raises ChatRefused,
        ModerationRefused."""
        if isinstance(event, MediaEvent):
            self._room.media_event(self._peer, event.data)
        elif isinstance(event, ChatPost):
            return self._room.chat(self._peer, event.text).id
        elif isinstance(event, ModerationRequest):
            await moderate(self._room, self._peer, event)
        elif isinstance(event, RelaySend):
            self._route(event)
        else:
            raise TypeError(f"not an event for a room: {event!r}")
        return None

    def _route(self, message: RelaySend) -> None:
        if self._peer.closed_reason is not None:
            return
        item = RelayText(message.text)
        if message.to is None:
            self._room.broadcast(item, kind=RELAY, exclude=self.id)
            return
        for target in message.to:
            if target != self.id:
                self._room.unicast(target, item, kind=RELAY)

    def leave(self, reason: str) -> None:
        """Leave the room; the room's other relay participants hear of a relay participant leaving.

        Safe to call twice; a participant the room already let go of is announced
        all the same, since nobody was told yet."""
        if self._left:
            return
        self._left = True
        self._room.leave(self._peer, reason)
        if self.kind == RELAY:
            self._room.broadcast(PeerLeft(self.id), kind=RELAY)

    def __aiter__(self) -> "LocalLink":
        return self

    async def __anext__(self) -> FromRoom:
        """The next thing the room sent; StopAsyncIteration once the link is closed,
        at once (queued items dropped) when it was cut off for leaving too much unread."""
        try:
            item = await self._peer.outbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        if self._peer.cut_off:
            raise StopAsyncIteration
        return self._event(item)

    def take_ready(self) -> list[FromRoom]:
        """What the room has queued for the participant now, without waiting (nothing once it was cut off):
        a link carried to another node forwards it in step with the room's dispatch."""
        items: list[FromRoom] = []
        while not self._peer.cut_off:
            try:
                items.append(self._event(self._peer.outbox.receive_nowait()))
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        return items

    def _event(self, item) -> FromRoom:
        if isinstance(item, str):  # the engine's media event text, or relay text queued as such
            return MediaEvent(item) if self.kind != RELAY else RelayText(item)
        return item

    @property
    def closed(self) -> Closure | None:
        peer = self._peer
        if peer.closed_reason is None:
            return None
        return Closure(peer.closed_reason, rejoin=peer.rejoin, retry=peer.retry, cut_off=peer.cut_off)


class LocalRoomService:
    """The rooms of this process's :class:`~.registry.RoomRegistry` (see :class:`~.link.RoomService`)."""

    def __init__(self, registry: RoomRegistry):
        self.registry = registry

    def admit(self, name: str, password: str | None, address: str, token: str | None = None) -> AccessToken | None:
        """Check a join before anything is made for it; returns the checked token. Raises JoinRefused."""
        return self.registry.admit(name, password, address, token).ticket

    async def join(self, name: str, display: str, password: str | None, *, kind: str, address: str,
                   token: str | None = None, waiting: Waiting | None = None) -> ParticipantLink:
        """Check the join, open the room and enter it (after its waiting room, if it has one: ``waiting``
        is told); returns the link. Raises JoinRefused."""
        room, peer = await self.registry.join(name, display, password, kind=kind, address=address, token=token,
                                              waiting=waiting)
        return self._linked(room, peer)

    async def enter(self, name: str, display: str, password: str | None, *, kind: str,
                    ticket: AccessToken | None = None) -> ParticipantLink:
        """Open the room and enter it (the join already admitted); returns the link. Raises JoinRefused."""
        room, peer = await self.registry.enter(name, display, password, kind=kind, ticket=ticket)
        return self._linked(room, peer)

    @staticmethod
    def _linked(room: Room, peer: Peer) -> LocalLink:
        # No checkpoint since the peer joined: the others hear of it before anything it sends.
        if peer.kind == RELAY:
            room.broadcast(PeerJoined(peer.id), kind=RELAY, exclude=peer.id)
        return LocalLink(room, peer)

    def people(self, name: str) -> int:
        room = self.registry.get(name)
        return room.peer_count("rtc") if room is not None else 0

    def snapshot(self) -> list[dict[str, Any]]:
        return self.registry.snapshot()

    def participants(self, name: str) -> list[dict[str, Any]] | None:
        """The people in room ``name`` now (id, name, identity, kind, moderator); None when it does not run here."""
        room = self.registry.get(name)
        if room is None:
            return None
        return [{"id": p.id, "name": p.name, "identity": p.identity, "kind": p.kind, "moderator": p.grants.moderate}
                for p in room.peers.values()]

    def rows(self) -> list[dict[str, Any]]:
        """Every room of this process as the server API shows it: its admin view row with ``participants``."""
        rows = self.snapshot()
        for row in rows:
            row["participants"] = self.participants(row["name"]) or []
        return rows

    async def rooms(self) -> dict[str, Any]:
        """``{"rooms": [ROOM, ...]}`` (:meth:`rows`)."""
        return {"rooms": self.rows()}

    async def room(self, name: str) -> dict[str, Any]:
        """Room ``name``'s row (:meth:`rows`); raises ModerationRefused (no_such_room)."""
        row = next((row for row in self.rows() if row["name"] == name), None)
        if row is None:
            raise ModerationRefused("no_such_room", f"room '{name[:64]}' is not running here")
        return row

    async def create(self, config: RoomConfig, unused_grace: float) -> None:
        """Start a room with ``config`` made on demand; raises JoinRefused (room_exists, too_many_rooms, ...)."""
        self.registry.create(config, unused_grace)

    async def moderate(self, name: str, request: ModerationRequest) -> dict[str, Any]:
        """Carry out ``request`` in room ``name`` for the server (the server API); returns what was done.
        Raises ModerationRefused (no_such_room, and those of :func:`.moderator.carry_out`)."""
        room = self.registry.get(name)
        if room is None or room.stopping:
            raise ModerationRefused("no_such_room", f"room {name[:64]!r} is not running here")
        return await carry_out(room, request)

    async def record(self, name: str, action: str) -> dict[str, Any]:
        room = self.registry.get(name)
        if room is None or room.stopping:
            raise ModerationRefused("no_such_room", f"room {name[:64]!r} is not running here")
        recording = getattr(room.engine, "recording", None)  # the SFU engine's (engine/recording_side.py)
        if recording is None:
            raise ModerationRefused("recording_unavailable", "this room has no media engine to record")
        return {"recording": await recording.operator(action)}
