"""The edge of a link across nodes: the participant link a socket handler gets for a room on another node.

The node a client reached (the edge) holds a :class:`RemoteLink` per
participant whose room runs on another node (the room's node). What the
handler sends is published to the room's node; what the room sends comes
back as messages, into the link's bounded inbox (``OUTBOX_SIZE``, as a
local participant's outbox: a handler that leaves it unread is cut off the
same way). :class:`EdgeLinks` keeps them by key, answers the room node's
messages, and ends a link whose room node stopped answering (``retry``, so
that the client joins again and finds the room wherever it is placed next).
A moderation request is carried like a chat message and answered with what
the room's node decided; a join that waits in the room's waiting room is
told so, and then waits as long as the room's node lets it (its beats keep
it, silence refuses it).
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

import trio

from ..rooms.admission import JoinRefused
from ..rooms.link import (ChatPost, ChatRefused, Closure, FromRoom, MediaEvent, ModerationRefused, ModerationRequest,
                          RelaySend, RoomSettings, ToRoom)
from ..rooms.link_codec import encode
from ..rooms.room import OUTBOX_SIZE, TOO_SLOW
from ..rooms import waiting_room
from .link_bus import LinkBus

JOIN_TIMEOUT = 7.0   # seconds for the room's node to answer a join (it may have to open the room)
REQUEST_TIMEOUT = 5.0  # seconds a send, chat or moderation request waits for the room's node to answer
SILENT_FOR = 10.0    # seconds joins to a node that went silent are refused at once (its leases lapse meanwhile)
GONE = "the room's server is gone; please rejoin"
NOT_ANSWERING = "the room's server stopped answering; please rejoin"


class RemoteLink:
    """One participant of a room on node ``node`` (see :class:`~videoroomd.rooms.link.ParticipantLink`)."""

    def __init__(self, edge: "EdgeLinks", key: str, node: str, room: str, kind: str, now: float):
        self._edge = edge
        self.key = key
        self.node = node
        self.room = room
        self.kind = kind
        self.id = ""
        self.settings = RoomSettings(room)
        self.seen = now                    # when the room's node last spoke of this link
        self.answered = trio.Event()       # the room's node answered the join
        self.refusal: tuple[str, str] | None = None
        self.moderator = False             # shown the moderation controls (the room's node checks every request)
        self.waiting: Callable[[dict], None] | None = None  # told that the join waits in the waiting room
        self.waits = False                 # the room's node said the join waits in its waiting room
        self.join_scope: trio.CancelScope | None = None  # the join's wait for an answer
        self._closure: Closure | None = None
        self._left = False
        self._in, self._out = trio.open_memory_channel[FromRoom](OUTBOX_SIZE)

    async def send(self, event: ToRoom) -> str | None:
        """Hand ``event`` to the room; returns a chat message's id. Raises ChatRefused."""
        if isinstance(event, ChatPost):
            return await self._edge.chat(self, event.text)
        if isinstance(event, ModerationRequest):
            await self._edge.moderate(self, event)
            return None
        if not isinstance(event, (MediaEvent, RelaySend)):
            raise TypeError(f"not an event for a room: {event!r}")
        if self._closure is None:  # answered once the room dispatched it (what it sent on travels ahead)
            await self._edge.request(self, "send", item=event)
        return None

    def leave(self, reason: str) -> None:
        """Leave the room: the room's node is told (queued, never waits); safe to call twice."""
        if self._left:
            return
        self._left = True
        self.end(Closure(reason))
        self._edge.forget(self, tell=reason)

    def end(self, closure: Closure) -> None:
        """Close the link with ``closure`` (the first one stands); the handler's stream ends."""
        if self._closure is None:
            self._closure = closure
            self._in.close()
            self._edge.wake(self)

    def deliver(self, item: FromRoom) -> None:
        """Something the room sent; a full inbox cuts the participant off (and the room's node is told)."""
        if self._closure is not None:
            return
        try:
            self._in.send_nowait(item)
        except trio.WouldBlock:
            reason = f"{TOO_SLOW}: {OUTBOX_SIZE} messages left unread"
            self.end(Closure(reason, cut_off=True))
            self._edge.forget(self, tell=reason)

    def __aiter__(self) -> "RemoteLink":
        return self

    async def __anext__(self) -> FromRoom:
        """The next thing the room sent; StopAsyncIteration once closed (at once when cut off)."""
        try:
            item = await self._out.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        if self._closure is not None and self._closure.cut_off:
            raise StopAsyncIteration
        return item

    @property
    def closed(self) -> Closure | None:
        return self._closure


class EdgeLinks:
    """This node's links to rooms on other nodes, by key; the edge's half of the link protocol."""

    def __init__(self, bus: LinkBus, clock: Callable[[], float] = trio.current_time):
        self.bus = bus
        self.clock = clock
        self.links: dict[str, RemoteLink] = {}
        self.people: dict[str, int] = {}   # room → its participants, as its node last said
        self._pending: dict[int, tuple[str, trio.Event, list]] = {}  # request → (link key, answered, answer)
        self.silent: dict[str, float] = {}  # node → when its links went silent (until one speaks, or SILENT_FOR)
        self._next_request = 0

    async def join(self, node: str, room: str, display: str, password: str | None, *, kind: str, address: str,
                   enter: bool, token: str | None = None, timeout: float = JOIN_TIMEOUT,
                   waiting: Callable[[dict], None] | None = None) -> RemoteLink:
        """Join ``room`` on ``node``; returns the link. Raises JoinRefused (the room node's answer, or none).

        ``waiting`` is told when the join waits in the room's waiting room; from then on the join waits
        for the moderator's answer as long as the room's node lets it wait (WAIT_TIMEOUT), or until
        its node goes silent.

        A node whose links went silent is not asked: its rooms' leases lapse soon, and the join
        is refused at once so that the client tries again then."""
        if self.is_silent(node):
            raise JoinRefused("room_unavailable", f"room '{room}' is moving to another server; try again in a moment")
        link = RemoteLink(self, uuid.uuid4().hex, node, room, kind, self.clock())
        link.waiting = waiting
        link.join_scope = trio.move_on_after(timeout)
        self.links[link.key] = link
        try:
            await self.bus.put(node, encode("join", link=link.key, origin=self.bus.node, room=room, display=display,
                                            password=password, kind=kind, address=address, enter=enter,
                                            token=token))
            with link.join_scope:
                await link.answered.wait()
        except BaseException:
            self.forget(link, tell="connection closed")
            raise
        link.join_scope = None
        if not link.answered.is_set():
            self.forget(link, tell="connection closed")
            raise JoinRefused("room_unavailable", f"room '{room}' does not answer right now; try again in a moment")
        if link.refusal is not None:
            self.links.pop(link.key, None)
            raise JoinRefused(*link.refusal)
        return link

    def is_silent(self, node: str) -> bool:
        """Whether ``node``'s links went silent lately (it is likely dead: no join is sent there)."""
        return node in self.silent and self.clock() - self.silent[node] < SILENT_FOR

    def forget(self, link: RemoteLink, *, tell: str | None = None) -> None:
        """Drop ``link`` from the table; ``tell``: the reason the room's node hears (it leaves the room)."""
        if self.links.pop(link.key, None) is not None and tell is not None:
            self.bus.post(link.node, encode("leave", link=link.key, reason=tell))

    async def chat(self, link: RemoteLink, text: str) -> str:
        """A chat message through ``link``; returns its id. Raises ChatRefused."""
        if link.closed is not None:
            raise ChatRefused("not_joined", f"you are not in room '{link.room}'")
        answer = await self.request(link, "chat", text=text)
        if not answer:
            raise ChatRefused("unavailable", "the room did not answer; try again")
        if answer[0] is None:
            raise ChatRefused(answer[1], answer[2])
        return answer[0]

    async def moderate(self, link: RemoteLink, request: ModerationRequest) -> None:
        """Carry ``request`` to the room's node; returns once it was carried out there. Raises
        ModerationRefused (the room's refusal, or unavailable when no answer came)."""
        if link.closed is not None:
            raise ModerationRefused("not_joined", f"you are not in room '{link.room}'")
        answer = await self.request(link, "moderate", item=request)
        if not answer:
            raise ModerationRefused("unavailable", "the room did not answer; try again")
        if answer[0] is not None:
            raise ModerationRefused(answer[0], answer[1])

    async def request(self, link: RemoteLink, message_type: str, **fields: Any) -> list:
        """Send a ``send``, ``chat`` or ``moderate`` and wait for its answer (REQUEST_TIMEOUT at most, or
        until the link ends); returns the answer's values (:data:`ANSWERS`), empty when none came."""
        self._next_request += 1
        req = self._next_request
        answer: list = []
        self._pending[req] = (link.key, done := trio.Event(), answer)
        try:
            await self.bus.put(link.node, encode(message_type, link=link.key, req=req, **fields))
            with trio.move_on_after(REQUEST_TIMEOUT):
                await done.wait()
        finally:
            del self._pending[req]
        return answer

    def wake(self, link: RemoteLink) -> None:
        """``link`` ended: its requests stop waiting."""
        for key, done, _ in self._pending.values():
            if key == link.key:
                done.set()

    def handle(self, kind: str, fields: dict[str, Any]) -> bool:
        """Take one message from a room's node; returns False when it is not the edge's to take."""
        if kind in ANSWERS:
            pending = self._pending.get(fields["req"])
            if pending is not None and pending[0] == fields["link"]:
                pending[2].extend(ANSWERS[kind](fields))
                pending[1].set()
            return True
        if kind not in ("waiting", "joined", "refused", "event", "closed"):
            return False
        link = self.links.get(fields["link"])
        if link is None:
            return True  # a link that already ended here: the room's node hears so from the next beat
        link.seen = self.clock()
        self.silent.pop(link.node, None)
        if kind == "waiting":
            self._waits(link, fields)
        elif kind == "joined":
            link.id = fields["peer"]
            link.settings = RoomSettings(fields["room"], fields["simulcast"])
            link.moderator = fields["moderator"]
            self.people[link.room] = fields["people"]
            link.answered.set()
        elif kind == "refused":
            link.refusal = (fields["code"], fields["reason"])
            link.answered.set()
        elif kind == "event":
            link.deliver(fields["item"])
        else:
            self.people[link.room] = fields["people"]
            self.links.pop(link.key, None)
            link.end(Closure(fields["reason"], rejoin=fields["rejoin"], retry=fields["retry"],
                             cut_off=fields["cut_off"]))
        return True

    @staticmethod
    def _waits(link: RemoteLink, fields: dict[str, Any]) -> None:
        """The join waits in the room's waiting room: its client is told, and its wait is the room's."""
        if link.answered.is_set():
            return
        link.waits = True
        if link.join_scope is not None:
            link.join_scope.deadline = trio.current_time() + waiting_room.WAIT_TIMEOUT + JOIN_TIMEOUT
        if link.waiting is not None:
            link.waiting({"waiting": True, "id": fields["id"], "position": fields["position"]})

    def heard(self, links: list[str]) -> list[str]:
        """The room's node still holds ``links``; returns those of them this node does not know."""
        now = self.clock()
        unknown = []
        for key in links:
            link = self.links.get(key)
            if link is None:
                unknown.append(key)
            else:
                link.seen = now
                self.silent.pop(link.node, None)
        return unknown

    def gone(self, keys: list[str], reason: str = GONE) -> None:
        """The room's node does not know these links (it restarted), or their messages were lost: they end
        with ``reason``, and their clients rejoin."""
        for key in keys:
            link = self.links.pop(key, None)
            if link is not None:
                _fail(link, reason)

    def end_all(self, reason: str) -> None:
        """End every link (this node stops): their clients rejoin, through another node; the rooms' nodes
        are told they left."""
        for link in list(self.links.values()):
            self.forget(link, tell="connection closed")
            link.end(Closure(reason, rejoin=True))

    def beat(self, silence: float) -> dict[str, list[str]]:
        """End the links whose room node has been silent for ``silence`` seconds (``retry``);
        returns the keys of the joined links left, by the node their room runs on."""
        now = self.clock()
        by_node: dict[str, list[str]] = {}
        for link in list(self.links.values()):
            if not link.answered.is_set() and not link.waits:
                continue
            if now - link.seen > silence:
                self.silent[link.node] = now
                self.links.pop(link.key, None)
                _fail(link, NOT_ANSWERING)
                continue
            by_node.setdefault(link.node, []).append(link.key)
        rooms = {link.room for link in self.links.values()}
        for room in [room for room in self.people if room not in rooms]:
            del self.people[room]  # counts of rooms this node has nobody in any more
        return by_node


def _fail(link: RemoteLink, reason: str) -> None:
    """``link``'s room node is gone: a join still waiting for it is refused, a joined link ends (``retry``)."""
    if not link.answered.is_set():
        link.refusal = ("room_unavailable", reason)
        link.answered.set()
    else:
        link.end(Closure(reason, retry=True))


# What a request's answer holds, by the answer's type: [True] sent; [id] or [None, code, reason] for a chat
# message; [None] or [code, reason] for a moderation request.
ANSWERS: dict[str, Callable[[dict[str, Any]], list]] = {
    "sent": lambda fields: [True],
    "chat_ok": lambda fields: [fields["id"]],
    "chat_refused": lambda fields: [None, fields["code"], fields["reason"]],
    "moderate_ok": lambda fields: [None],
    "moderate_refused": lambda fields: [fields["code"], fields["reason"]],
}
