"""One room: its peers, its limits, and the dispatch of messages between them.

A :class:`Room` is owned by one trio task (``run``). Joining and leaving are
synchronous methods: trio switches tasks only at ``await``, so two sockets
joining at the same instant are serialised here and the ``max_peers`` check
can never be raced past.

Each peer has a bounded outbox. A peer that does not read its outbox fast
enough is disconnected with a reason instead of growing the daemon's memory.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import structlog
import trio

from ..auth.tokens import EVERYONE, AccessToken, Grants
from ..config import RoomConfig
from ..logs.ratelimit import ThrottledLog
from ..exception_groups import only_cancelled
from .admission import JoinRefused, check_entry, password_matches  # noqa: F401 (JoinRefused: importable here)
from .chat import ChatLog, ChatMessage, ChatRefused
from .events import NO_EVENTS, RoomEvents, participant
from .link import CHAT, CHAT_HISTORY, LOBBY, ChannelPush
from .moderation import RoomModeration
from .waiting_room import WaitingRoom

log = structlog.get_logger("videoroomd.room")
throttled = ThrottledLog(log)  # lines a client can cause, rate-limited

OUTBOX_SIZE = 256  # messages a peer may leave unread before it is cut off
TOO_SLOW = "too slow"
MODERATOR = Grants(moderate=True)  # the grants of a join with the room's moderator password
MAX_NAME = 64      # characters of a display name


def display_name(text: str, fallback: str = "Guest") -> str:
    """``text`` as a name to show others: no control or format characters, runs of
    whitespace made one space, at most MAX_NAME characters; ``fallback`` when nothing is left."""
    kept = "".join(c for c in text[: MAX_NAME * 8] if not unicodedata.category(c).startswith("C") or c.isspace())
    return " ".join(kept.split())[:MAX_NAME].strip() or fallback


def shown_name(typed: str, ticket: AccessToken | None) -> str:
    """The name others see of someone joining: its token's, else the one it typed (cleaned)."""
    return display_name(ticket.name if ticket is not None and ticket.name else typed)


@dataclass(eq=False)
class Peer:
    """One participant: an id, a display name, what it may do, and the outbox its socket task reads."""

    id: str
    name: str
    kind: str  # "rtc" (Phoenix channel, through the engine) or "relay" (/signaling)
    outbox: trio.MemoryReceiveChannel
    _inbox_send: trio.MemorySendChannel = field(repr=False)
    grants: Grants = EVERYONE
    identity: str | None = None  # the access token's sub, when it joined with one
    closed_reason: str | None = None
    rejoin: bool = False  # closed by a restart of its room: the client should join again
    retry: bool = False   # closed for a broken media path: joining again (a new connection) may work

    def deliver(self, message: Any) -> bool:
        """Queue ``message`` for the peer's socket; a full outbox disconnects the peer.

        Returns False when the peer is (now) closed.
        """
        if self.closed_reason is not None:
            return False
        try:
            self._inbox_send.send_nowait(message)
            return True
        except trio.WouldBlock:
            self.close(f"{TOO_SLOW}: {OUTBOX_SIZE} messages left unread")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.close("connection closed")
        return False

    @property
    def cut_off(self) -> bool:
        """Closed for leaving its outbox unread: nothing more should be sent to it."""
        return (self.closed_reason or "").startswith(TOO_SLOW)

    def close(self, reason: str, *, rejoin: bool = False, retry: bool = False) -> None:
        """Mark the peer closed; its socket task sees the outbox end and reads ``closed_reason``."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self.rejoin = rejoin
            self.retry = retry
            self._inbox_send.close()


class Engine(Protocol):
    """What a room needs of the media engine that serves it (the SFU)."""

    async def run(self, room: "Room", *, task_status=trio.TASK_STATUS_IGNORED) -> None: ...

    def peer_joined(self, peer: Peer) -> None: ...

    def peer_left(self, peer: Peer) -> None: ...

    def media_event(self, peer: Peer, data: str) -> None: ...


class Room:
    """The peers of one configured room; ``run`` is its owning task."""

    def __init__(self, config: RoomConfig, engine: Engine | None = None, *, unused_grace: float | None = None,
                 events: RoomEvents = NO_EVENTS):
        """``unused_grace``: seconds after opening after which a room with nobody in it
        calls ``on_empty`` (a dynamic room whose first join never arrived); None: never.
        ``events``: told when the room opens and ends, people come and go, and chat is posted."""
        self.config = config
        self.events = events
        self.name = config.name
        self.engine = engine
        self.unused_grace = unused_grace
        self.peers: dict[str, Peer] = {}
        self.accepting = False
        self._refusal: tuple[str, str] | None = None  # (code, reason), set while draining or once stopping
        self._stopped = trio.Event()
        self.stop_reason = "room stopped"
        self.stop_rejoin = False
        self.opened = trio.Event()
        self.settled = trio.Event()  # set once the room opened, or ended without opening
        self._ended = False
        self._opening = trio.CancelScope()  # a stop before the room opened cancels its opening
        self.became_empty = trio.Event()
        self.on_empty: Callable[[], None] | None = None
        self.chat_log = ChatLog()
        self.moderation = RoomModeration()
        self.waiting = WaitingRoom(self.name, self._waiting_changed)

    # -- lifecycle -----------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve the room until :meth:`stop` is called; then disconnect every peer.

        Returns after a stop; raises whatever the engine raises (the supervisor
        restarts the room, and its peers are told to rejoin).
        """
        error_reason = f"room '{self.name}' failed; please rejoin"
        rejoin = True
        try:
            async with trio.open_nursery() as nursery:
                if self.engine is not None:
                    with self._opening:
                        await nursery.start(self.engine.run, self)
                    if self._opening.cancelled_caught:  # stopped while opening
                        error_reason, rejoin = self.stop_reason, self.stop_rejoin
                        return
                self.accepting = True
                self.opened.set()
                self.settled.set()
                if self.unused_grace is not None:
                    nursery.start_soon(self._close_if_unused, self.unused_grace)
                task_status.started(self)
                log.info("room open", room=self.name, max_peers=self.config.max_peers)
                self.events.emit("room.started", self.name)
                await self._stopped.wait()
                # Tell the peers first: the engine may take a moment to close its connections.
                self._remove_all(self.stop_reason, self.stop_rejoin)
                nursery.cancel_scope.cancel()
            error_reason, rejoin = self.stop_reason, self.stop_rejoin
        except BaseException as error:
            if only_cancelled(error):  # the daemon is stopping, not the room failing
                error_reason, rejoin = self.stop_reason, self.stop_rejoin
            raise
        finally:
            self.accepting = False
            self._ended = True
            self._refusal = ("closed", error_reason)
            self._remove_all(error_reason, rejoin)
            self.settled.set()
            log.info("room closed", room=self.name, reason=error_reason)
            if self.opened.is_set():
                self.events.emit("room.ended", self.name, reason=error_reason)

    async def _close_if_unused(self, grace: float) -> None:
        await trio.sleep(grace)
        if not self.peers and self.on_empty is not None:
            log.info("room closed: nobody joined", room=self.name, grace_s=grace)
            self.on_empty()

    def _remove_all(self, reason: str, rejoin: bool) -> None:
        self.accepting = False
        self._refusal = ("closed", reason)
        self.waiting.close(reason)
        for peer in list(self.peers.values()):
            self._remove(peer, reason, rejoin=rejoin)

    def stop(self, reason: str, *, rejoin: bool = False) -> None:
        """Close the room: every peer is disconnected with ``reason`` (and told to rejoin).

        Joins are refused from now on, not only once the room's task has woken:
        a peer let in now would be thrown out a moment later. The first stop's
        reason stands (the last peer leaving a stopping dynamic room stops it again).
        """
        if self._stopped.is_set():
            return
        self.stop_reason = reason
        self.stop_rejoin = rejoin
        self.accepting = False
        self._refusal = ("closed", reason)
        self._stopped.set()
        if not self.opened.is_set():
            self._opening.cancel()

    @property
    def stopping(self) -> bool:
        """The room was stopped or has ended: it takes nobody new."""
        return self._stopped.is_set() or self._ended

    def refuse_joins(self, code: str, reason: str) -> None:
        """Keep the calls going but take no new peers (draining)."""
        self._refusal = (code, reason)

    # -- peers -----------------------------------------------------------------
    def peer_count(self, kind: str | None = None) -> int:
        return sum(1 for p in self.peers.values() if kind is None or p.kind == kind)

    def join(self, name: str, password: str | None, *, kind: str = "rtc", ticket: AccessToken | None = None) -> Peer:
        """Add a peer (admitted with ``ticket`` when it came with an access token: its name,
        identity and grants are the token's); returns it, or raises JoinRefused with a reason."""
        check_entry(self.config, password, peers=self.peer_count(kind), accepting=self.accepting, refusal=self._refusal,
                    ticket=ticket)
        grants = ticket.grants if ticket is not None else self._password_grants(password)
        self.moderation.check_join(self.name, ticket, moderator=grants.moderate)
        send, receive = trio.open_memory_channel(OUTBOX_SIZE)
        shown = shown_name(name, ticket)
        identity = ticket.identity if ticket is not None else None
        peer = Peer(id=str(uuid.uuid4()), name=shown, kind=kind, outbox=receive, _inbox_send=send,
                    grants=self.moderation.grants_for(identity, grants), identity=identity)
        self.peers[peer.id] = peer
        self.became_empty = trio.Event()
        log.info("peer joined", room=self.name, peer=peer.id, kind=kind, peers=len(self.peers))
        self.events.emit("participant.joined", self.name, participant=participant(peer))
        if kind == "rtc" and self.chat_log.messages:
            # First in the outbox, so the client has it right after the reply to its join.
            peer.deliver(ChannelPush(CHAT_HISTORY, {"messages": self.chat_log.history()}))
        if kind == "rtc" and self.engine is not None:
            self.engine.peer_joined(peer)
        if kind == "rtc" and grants.moderate and self.waiting.waiters:
            peer.deliver(ChannelPush(LOBBY, {"waiting": self.waiting.listing()}))
        return peer

    def at_door(self, password: str | None, *, kind: str, ticket: AccessToken | None) -> bool:
        """Whether this join waits in the waiting room first (``lobby``: everyone but moderators, on the
        Phoenix channel). Raises JoinRefused at once for a join the moderators shut out (ban, lock)."""
        grants = ticket.grants if ticket is not None else self._password_grants(password)
        self.moderation.check_join(self.name, ticket, moderator=grants.moderate)
        return self.config.lobby and kind == "rtc" and not grants.moderate

    def _waiting_changed(self) -> None:
        """Who waits, told to the moderators in the room."""
        listing = ChannelPush(LOBBY, {"waiting": self.waiting.listing()})
        for peer in list(self.peers.values()):
            if peer.kind == "rtc" and peer.grants.moderate:
                self._deliver(peer, listing)

    def _password_grants(self, password: str | None) -> Grants:
        """A join without a token: a moderator's grants with the room's moderator password, else everyone's."""
        wanted = self.config.moderator_password
        if wanted is not None and password and password_matches(password, wanted):
            return MODERATOR
        return EVERYONE

    def leave(self, peer: Peer, reason: str = "left", *, retry: bool = False) -> None:
        """Remove ``peer`` (its socket closed, it said goodbye, or its media connection
        broke: ``retry`` tells its client that joining again may work); the others hear of it."""
        if self.peers.get(peer.id) is peer:
            self._remove(peer, reason, retry=retry)

    def _remove(self, peer: Peer, reason: str, *, rejoin: bool = False, retry: bool = False) -> None:
        del self.peers[peer.id]
        peer.close(reason, rejoin=rejoin, retry=retry)
        self.chat_log.forget(peer.id)
        log.info("peer left", room=self.name, peer=peer.id, reason=reason, peers=len(self.peers))
        if peer.kind == "rtc" and self.engine is not None:
            self.engine.peer_left(peer)  # its tracks' news goes out first
        self.events.emit("participant.left", self.name, participant=participant(peer), reason=reason)
        if not self.peers:
            self.became_empty.set()
            if self.on_empty is not None:
                self.on_empty()

    def track_count(self) -> int:
        counter = getattr(self.engine, "track_count", None)
        return counter() if counter is not None else 0

    def media_counters(self) -> dict[str, int]:
        """The engine's forwarding counters (none for a room without an engine)."""
        counters = getattr(self.engine, "media_counters", None)
        return counters() if counters is not None else {}

    def media_worker(self) -> str | None:
        """The media worker that carries this room's calls (None for a room without an engine)."""
        worker = getattr(self.engine, "media_worker", None)
        return worker() if worker is not None else None

    # -- dispatch ----------------------------------------------------------------
    def media_event(self, peer: Peer, data: str) -> None:
        """A media event from ``peer``'s client, for the engine."""
        if self.peers.get(peer.id) is not peer:
            return
        if self.engine is None:
            throttled.info("media event dropped: this room has no media engine", room=self.name, peer=peer.id)
            return
        self.engine.media_event(peer, data)

    def chat(self, peer: Peer, text: str) -> ChatMessage:
        """A chat message from ``peer``, sent to everyone in the room (``peer`` too).

        Returns the message as sent; raises ChatRefused with a reason for its sender.
        """
        if self.peers.get(peer.id) is not peer or peer.kind != "rtc":
            raise ChatRefused("not_joined", f"you are not in room '{self.name}'")
        if not peer.grants.chat:
            raise ChatRefused("not_allowed", "your access token does not allow posting in this room's chat")
        message = self.chat_log.post(peer.id, peer.name, text, now=trio.current_time())
        self.events.emit("chat.message", self.name, participant=participant(peer),
                         message={"id": message.id, "text": message.text})
        self.broadcast(ChannelPush(CHAT, message.payload()), kind="rtc")
        return message

    def unicast(self, peer_id: str, message: Any, *, kind: str | None = None) -> bool:
        peer = self.peers.get(peer_id)
        if peer is None or (kind is not None and peer.kind != kind):
            return False
        return self._deliver(peer, message)

    def broadcast(self, message: Any, *, kind: str, exclude: str | None = None) -> None:
        for peer in list(self.peers.values()):
            if peer.kind == kind and peer.id != exclude:
                self._deliver(peer, message)

    def _deliver(self, peer: Peer, message: Any) -> bool:
        if peer.deliver(message):
            return True
        # The outbox overflowed or closed: the peer is gone for everyone.
        self.leave(peer, peer.closed_reason or "connection closed")
        return False
