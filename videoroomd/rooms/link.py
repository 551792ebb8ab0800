"""The participant link: what a socket handler may ask of a room, and what crosses between them.

A socket handler (the Phoenix channel, the relay) joins a room through a
:class:`RoomService` and then speaks only to the :class:`ParticipantLink` it
got back: it sends :data:`ToRoom` events, reads :data:`FromRoom` events, and
leaves. Everything that crosses is a frozen dataclass of plain data (str,
numbers, dicts and lists of them), so that an implementation may carry it
between processes or nodes. The one implementation today,
:mod:`.local_link`, wraps the rooms of this process.

This module imports nothing of the package but the chat's error type (a
refused join raises the rooms' JoinRefused), the moderation request and its
error, and the checked access token (plain data): both sides of the seam
import it, never each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Protocol, Union

from ..auth.tokens import AccessToken
from .chat import ChatRefused
from .moderation import ModerationRefused, ModerationRequest

__all__ = [
    "CHAT", "CHAT_HISTORY", "LOBBY", "MODERATED", "ChannelPush", "ChatPost", "ChatRefused", "Closure", "FromRoom",
    "MediaEvent", "ModerationRefused", "ModerationRequest", "ParticipantLink", "PeerJoined", "PeerLeft", "RelaySend",
    "RelayText", "RoomService", "RoomSettings", "ToRoom",
]


# -- both ways ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MediaEvent:
    """A Membrane RTC Engine media event, as the JSON text the client sent or will receive."""

    data: str


# -- participant → room ------------------------------------------------------------------
@dataclass(frozen=True)
class ChatPost:
    """A chat message typed by the participant (the room cleans, limits and stamps it)."""

    text: str


@dataclass(frozen=True)
class RelaySend:
    """A relay message from the participant, already written as its relay frame (``from`` set).

    ``to``: the peer ids it is for; None for everyone in the room but the sender.
    The room only routes it; peers of other kinds never receive it."""

    text: str
    to: tuple[str, ...] | None


# A moderator's request (or a participant's own unmute): :class:`.moderation.ModerationRequest`.
ToRoom = Union[MediaEvent, ChatPost, RelaySend, ModerationRequest]


# -- room → participant ------------------------------------------------------------------
CHAT = "chat"                  # the Phoenix event of one chat message
CHAT_HISTORY = "chat_history"  # the Phoenix event of the history, sent to a newcomer
MODERATED = "moderated"        # the Phoenix event that tells a participant what a moderator did (docs/moderation.md)
LOBBY = "lobby"                # the Phoenix event of the waiting room: to who waits, and to the moderators


@dataclass(frozen=True)
class ChannelPush:
    """A Phoenix event for an "rtc" participant that is not a media event (chat, chat history)."""

    event: str
    payload: dict


@dataclass(frozen=True)
class RelayText:
    """A relay frame for a "relay" participant, as its sender's edge wrote it."""

    text: str


@dataclass(frozen=True)
class PeerJoined:
    """Another relay participant came into the room."""

    peer_id: str


@dataclass(frozen=True)
class PeerLeft:
    """A relay participant left the room."""

    peer_id: str


FromRoom = Union[MediaEvent, ChannelPush, RelayText, PeerJoined, PeerLeft]


@dataclass(frozen=True)
class RoomSettings:
    """What a socket handler needs to know of the room it joined."""

    name: str
    simulcast: bool = False


@dataclass(frozen=True)
class Closure:
    """Why the room let go of a participant.

    ``rejoin``: the room restarted, the client should join again by itself;
    ``retry``: the media path broke, joining again (a new connection) may work;
    ``cut_off``: it left too much unread, nothing more is sent to it."""

    reason: str
    rejoin: bool = False
    retry: bool = False
    cut_off: bool = False


class ParticipantLink(Protocol):
    """One participant in one room, as its socket handler sees it."""

    id: str
    kind: str  # "rtc" (Phoenix channel, through the engine) or "relay" (/signaling)
    settings: RoomSettings

    async def send(self, event: ToRoom) -> str | None:
        """Hand ``event`` to the room. Returns the id the room gave a chat message (None
        for other events); raises ChatRefused when the room will not take a chat message,
        ModerationRefused when it will not carry out a moderation request.
        Events sent after the link closed are dropped."""

    def leave(self, reason: str) -> None:
        """Leave the room (the socket closed, or the client said goodbye); safe to call twice.

        Synchronous and never blocks, so that it can run in a cancelled ``finally``:
        an implementation that must tell another process queues it."""

    def __aiter__(self) -> AsyncIterator[FromRoom]:
        """What the room sends, in order; ends once the link is closed (see :attr:`closed`)."""

    @property
    def closed(self) -> Closure | None:
        """Why the link was closed; None while it is open."""


class RoomService(Protocol):
    """The rooms, as socket and page handlers see them."""

    def admit(self, name: str, password: str | None, address: str, token: str | None = None) -> AccessToken | None:
        """Check a join before anything is made for it (room name, access token, password, throttle).

        Returns the checked token (None without one), for :meth:`enter`.
        Raises JoinRefused with a reason a person can read."""

    async def join(self, name: str, display: str, password: str | None, *, kind: str, address: str,
                   token: str | None = None, waiting: Any = None) -> ParticipantLink:
        """Check the join (:meth:`admit`), open the room and enter it. Raises JoinRefused.

        In a room with a waiting room (``lobby``) the join first waits for a moderator's answer;
        ``waiting`` (called with a JSON-ready dict) is told that it waits, and where."""

    async def enter(self, name: str, display: str, password: str | None, *, kind: str,
                    ticket: AccessToken | None = None) -> ParticipantLink:
        """Open the room and enter it, the join already admitted (``ticket``: what :meth:`admit`
        returned). Raises JoinRefused."""

    def people(self, name: str) -> int:
        """How many "rtc" participants room ``name`` has now (0 when it is not running)."""

    def snapshot(self) -> list[dict[str, Any]]:
        """A JSON-ready view of every room (the admin view and ``videoroomd rooms --live``)."""

    def participants(self, name: str) -> list[dict[str, Any]] | None:
        """The people in room ``name`` (JSON-ready); None when it does not run here."""

    async def rooms(self) -> dict[str, Any]:
        """The server API's list: ``{"rooms": [ROOM, ...]}``, every room of every node, each ROOM the
        admin view's row with ``participants``; in a cluster, ``"unreachable": [{"node", "reason"}]``
        for nodes that did not answer (their rooms as last shared, ``participants`` null)."""

    async def room(self, name: str) -> dict[str, Any]:
        """Room ``name``'s ROOM, from the node it runs on. Raises ModerationRefused (no_such_room, and in a
        cluster room_unavailable, node_busy, node_timeout, node_unreachable)."""

    async def create(self, config: Any, unused_grace: float) -> None:
        """Start a room made on demand with ``config`` (a RoomConfig); raises JoinRefused."""

    async def moderate(self, name: str, request: ModerationRequest) -> dict[str, Any]:
        """Carry out ``request`` in room ``name`` for the server, on the node it runs on; returns what was
        done. Raises ModerationRefused."""

    async def record(self, name: str, action: str) -> dict[str, Any]:
        """Start or stop (``action``) room ``name``'s recording for the operator; returns
        ``{"recording": id}``. Raises ModerationRefused (no_such_room, recording_unavailable,
        recording_refused)."""
