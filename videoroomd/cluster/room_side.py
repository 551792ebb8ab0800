"""The room's end of a link across nodes: remote participants joining the real room of this node.

For each join another node (the edge) sends, the room's node joins the
room through its own local room service, exactly as a client on this node
would (the admission gate, passwords and their throttle, max_peers, the
outbox and its bound, the chat's rate limit all apply here, once), and
forwards what the room sends to the edge, in order. A participant whose
edge has not spoken of it for a bounded silence (the edge died) is taken
out of the room. A join that waits in the room's waiting room tells the
edge so (``waiting``), is kept by the beats meanwhile, and ends at once
when the edge says its client left. A moderation request goes through the
participant's link into the same code as a local participant's, and its
answer (or refusal) goes back to the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import structlog
import trio

from ..rooms.admission import JoinRefused
from ..rooms.link import ChatPost, ChatRefused, Closure, MediaEvent, ModerationRefused, ModerationRequest, RelaySend
from ..rooms.local_link import LocalLink, LocalRoomService
from ..rooms.link_codec import encode
from ..rooms.room import TOO_SLOW
from .link_bus import LinkBus

log = structlog.get_logger("videoroomd.cluster")

EDGE_LOST = "the participant's server went away"


@dataclass(eq=False)
class Endpoint:
    """A participant of a room here whose socket is on node ``origin``."""

    key: str
    origin: str
    room: str
    seen: float
    link: LocalLink | None = None   # once it joined
    left: str | None = None               # the edge said it left (or went silent): nothing more is sent
    waits: bool = False                   # the join waits in the room's waiting room
    joining: trio.CancelScope = field(default_factory=trio.CancelScope)  # the join, cancelled when the edge leaves


class RoomSide:
    """The remote participants of this node's rooms, by link key."""

    def __init__(self, bus: LinkBus, rooms: LocalRoomService, clock: Callable[[], float] = trio.current_time):
        self.bus = bus
        self.rooms = rooms
        self.clock = clock
        self.endpoints: dict[str, Endpoint] = {}
        self.nursery: trio.Nursery | None = None
        self.refused = 0  # events an edge sent that its participant's kind may not send (dropped)

    async def handle(self, kind: str, fields: dict[str, Any]) -> bool:
        """Take one message from an edge node; returns False when it is not the room side's to take."""
        if kind == "join":
            assert self.nursery is not None
            if fields["link"] not in self.endpoints:
                endpoint = Endpoint(fields["link"], fields["origin"], fields["room"], self.clock())
                self.endpoints[endpoint.key] = endpoint
                self.nursery.start_soon(self._serve, endpoint, fields)
            return True
        if kind not in ("send", "chat", "moderate", "leave"):
            return False
        endpoint = self.endpoints.get(fields["link"])
        if endpoint is None:
            return True
        endpoint.seen = self.clock()
        if kind == "leave":
            self._leave(endpoint, fields["reason"])
            return True
        if kind == "send":
            await self._send(endpoint, fields["item"])
            answer = encode("sent", link=endpoint.key, req=fields["req"])
        elif kind == "moderate":
            answer = await self._moderate(endpoint, fields)
        else:
            answer = await self._chat(endpoint, fields)
        # What the room sent on because of it leaves before the answer: the sender's next step sees it done.
        self.flush()
        self.bus.post(endpoint.origin, answer)
        return True

    async def _send(self, endpoint: Endpoint, item: Any) -> None:
        """A media event (rtc) or relay message (relay) for the room: only what a local client of that
        kind could send gets in."""
        if endpoint.link is None or endpoint.left is not None:
            return
        allowed = RelaySend if endpoint.link.kind == "relay" else MediaEvent
        if not isinstance(item, allowed):
            self.refused += 1
            return
        await endpoint.link.send(item)

    async def _chat(self, endpoint: Endpoint, fields: dict) -> bytes:
        """The answer to a chat message: its id, or why the room refused it."""
        try:
            if endpoint.link is None or endpoint.left is not None:
                raise ChatRefused("not_joined", f"you are not in room '{endpoint.room}'")
            message_id = await endpoint.link.send(ChatPost(fields["text"]))
            return encode("chat_ok", link=endpoint.key, req=fields["req"], id=message_id or "")
        except ChatRefused as refused:
            return encode("chat_refused", link=endpoint.key, req=fields["req"], code=refused.code,
                          reason=refused.reason)

    async def _moderate(self, endpoint: Endpoint, fields: dict) -> bytes:
        """The answer to a moderation request, carried out by the participant's link as a local one's."""
        try:
            if endpoint.link is None or endpoint.left is not None:
                raise ModerationRefused("not_joined", f"you are not in room '{endpoint.room}'")
            request = fields["item"]
            if not isinstance(request, ModerationRequest):
                self.refused += 1
                raise ModerationRefused("malformed", "moderate: not a moderation request")
            await endpoint.link.send(request)
            return encode("moderate_ok", link=endpoint.key, req=fields["req"])
        except ModerationRefused as refused:
            return encode("moderate_refused", link=endpoint.key, req=fields["req"], code=refused.code,
                          reason=refused.reason)

    def flush(self) -> None:
        """Forward, now, what the rooms queued for remote participants (the pumps would a moment later)."""
        for endpoint in list(self.endpoints.values()):
            link = endpoint.link
            if link is not None and endpoint.left is None:
                for item in link.take_ready():
                    if not self._forward(endpoint, item):
                        break

    def _forward(self, endpoint: Endpoint, item: Any) -> bool:
        """Queue ``item`` for the participant's node; a full queue cuts the participant off (returns False).

        Never waits: taking an item from the room and queueing it are one step, so the pump and
        :meth:`flush` keep the room's order between them."""
        if self.bus.post(endpoint.origin, encode("event", link=endpoint.key, item=item)):
            return True
        reason = f"{TOO_SLOW}: the link to its server is full"
        endpoint.left = reason
        assert endpoint.link is not None
        endpoint.link.leave(reason)
        return False

    def _leave(self, endpoint: Endpoint, reason: str) -> None:
        if endpoint.left is None:
            endpoint.left = reason
            if endpoint.link is not None:
                endpoint.link.leave(reason)
            else:  # still joining (waiting in the waiting room, say): its place there is free at once
                endpoint.joining.cancel()

    async def _serve(self, endpoint: Endpoint, fields: dict) -> None:
        """Join the room for the edge, then forward what the room sends until the link ends."""
        key, origin = endpoint.key, endpoint.origin
        try:
            try:
                with endpoint.joining:
                    link = await self._join(endpoint, fields)
                if endpoint.joining.cancelled_caught:
                    return  # the edge said its client left while the join was under way
            except JoinRefused as refused:
                await self.bus.put(origin, encode("refused", link=key, code=refused.code, reason=refused.reason))
                return
            except Exception:  # a fault of this node must not end its other participants' links
                log.exception("remote join failed", room=endpoint.room[:80], node=origin)
                await self.bus.put(origin, encode("refused", link=key, code="room_unavailable",
                                                  reason=f"room '{endpoint.room}' cannot be joined right now"))
                return
            endpoint.link = link
            if endpoint.left is not None:  # the edge gave up while the room opened
                link.leave(endpoint.left)
                return
            # No checkpoint from the link being set to "joined" queued: nothing of the room's goes before it.
            if not self.bus.post(origin, encode("joined", link=key, peer=link.id, room=link.settings.name,
                                                simulcast=link.settings.simulcast, moderator=link.moderator,
                                                people=self.rooms.people(endpoint.room))):
                return
            async for item in link:
                if not self._forward(endpoint, item):
                    return
            closure = link.closed or Closure("connection closed")
            link.leave(closure.reason)  # the room is told now, before the edge hears the count
            if endpoint.left is None:
                await self.bus.put(origin, encode(
                    "closed", link=key, reason=closure.reason, rejoin=closure.rejoin, retry=closure.retry,
                    cut_off=closure.cut_off, people=self.rooms.people(endpoint.room)))
        finally:
            self.endpoints.pop(key, None)
            if endpoint.link is not None:
                endpoint.link.leave("connection closed")

    async def _join(self, endpoint: Endpoint, fields: dict) -> LocalLink:
        """The participant in the room, as a client of this node would join it; raises JoinRefused.
        A wait in the waiting room is told to the edge."""
        room, display, password, kind = fields["room"], fields["display"], fields["password"], fields["kind"]
        token = fields["token"]
        if fields["enter"]:  # the relay: admitted at the edge before its WebSocket upgrade; its token checked again here
            ticket = self.rooms.admit(room, password, fields["address"], token) if token is not None else None
            return await self.rooms.enter(room, display, password, kind=kind, ticket=ticket)
        return await self.rooms.join(room, display, password, kind=kind, address=fields["address"], token=token,
                                     waiting=lambda where: self._waiting(endpoint, where))

    def _waiting(self, endpoint: Endpoint, where: dict) -> None:
        endpoint.waits = True
        endpoint.seen = self.clock()
        self.bus.post(endpoint.origin, encode("waiting", link=endpoint.key, id=where["id"],
                                              position=where["position"]))

    def heard(self, links: list[str]) -> list[str]:
        """The edge still holds ``links``; returns those of them not in a room here."""
        now = self.clock()
        unknown = []
        for key in links:
            endpoint = self.endpoints.get(key)
            if endpoint is None:
                unknown.append(key)
            else:
                endpoint.seen = now
        return unknown

    def gone(self, keys: list[str]) -> None:
        """The edge does not know these links any more: they leave their rooms."""
        for key in keys:
            endpoint = self.endpoints.get(key)
            if endpoint is not None:
                self._leave(endpoint, "connection closed")

    def beat(self, silence: float) -> dict[str, list[str]]:
        """Take out of their rooms the participants whose edge has been silent for ``silence`` seconds;
        returns the keys of those left that are in a room, by the node of their socket."""
        now = self.clock()
        by_node: dict[str, list[str]] = {}
        for endpoint in list(self.endpoints.values()):
            if (endpoint.link is None and not endpoint.waits) or endpoint.left is not None:
                continue
            if now - endpoint.seen > silence:
                log.info("remote participant removed: its server went silent", node=endpoint.origin,
                         room=endpoint.room, silence_s=silence)
                self._leave(endpoint, EDGE_LOST)
                continue
            by_node.setdefault(endpoint.origin, []).append(endpoint.key)
        return by_node
