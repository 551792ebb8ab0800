"""``/socket/websocket``: one Phoenix socket, which may join one room once (the tutorial's PeerChannel).

The socket task reads frames and answers them; a second task pumps what
the room sends over the participant's link (media events from the engine,
chat) to the socket. When the socket closes, cleanly or by vanishing, the
participant leaves its room at once.
"""

from __future__ import annotations

import structlog
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from ..context import Context
from ..http import limits as connection_slot
from ..http.request import Request
from ..logs.ratelimit import ThrottledLog
from ..rooms import JoinRefused
from ..rooms.link import CHAT, LOBBY, ChannelPush, ChatPost, ChatRefused, FromRoom, MediaEvent, ParticipantLink
from ..rooms.moderation import ModerationRefused, parse_request
from ..rooms.registry import shown_name
from . import phoenix
from .phoenix import Frame, ProtocolError
from .websocket import (GOING_AWAY, POLICY_VIOLATION, HandshakeFailed, accepted, close_within, frame_too_large,
                        origin_allowed, receive_within, refuse, send_or_drop)

log = structlog.get_logger("videoroomd.peer_channel")
throttled = ThrottledLog(log)

PATH = "/socket/websocket"
IDLE_TIMEOUT = 60.0       # phoenix.js sends a heartbeat every 30 s; silence past this is a dead client
JOIN_TIMEOUT = 10.0       # seconds from the upgrade to a join: clients join at once, a socket that never does
                          # holds a connection's place for nothing
MAX_BAD_FRAMES = 20       # protocol errors tolerated on one socket before it is closed
MEDIA_EVENT = "mediaEvent"
MODERATE = "moderate"     # a moderator's request, beside the media events (docs/moderation.md)


async def serve_socket(context: Context, request: Request, stream: trio.abc.Stream) -> None:
    """Serve one ``/socket/websocket`` connection until it closes. Never raises for client faults."""
    server = context.config().server
    if not origin_allowed(request, server.allowed_origins):
        context.metrics.connections_refused.labels("origin").inc()
        throttled.warning("socket refused: origin not allowed", origin=request.headers.get("origin"), remote=request.remote[0])
        await refuse(stream, 403, f"origin {request.headers.get('origin')} is not allowed here")
        return
    vsn = request.query.get("vsn", "2.0.0")
    if not vsn.startswith("2."):
        await refuse(stream, 400, f"only the Phoenix JSON serializer v2 is spoken here (vsn=2.0.0), not vsn={vsn}")
        return
    try:
        async with accepted(stream, server.max_frame_size, context.metrics) as websocket:
            # The socket's connect params may carry an access token (phoenix.js puts params in the query).
            await PeerChannel(websocket, stream, context, request.remote, request.query.get("token")).run()
    except HandshakeFailed as failed:
        throttled.info("socket dropped before it opened", reason=str(failed), remote=request.remote[0])


class PeerChannel:
    """The state of one Phoenix socket: at most one joined room topic."""

    def __init__(self, websocket: WebSocketConnection, stream: trio.abc.Stream, context: Context,
                 remote: tuple[str, int], token: str | None = None):
        """``token``: the access token of the socket's connect params; a join's own ``token`` wins."""
        self.websocket = websocket
        self.token = token or None
        self.stream = stream
        self.context = context
        self.metrics = context.metrics
        self.remote = remote
        self.link: ParticipantLink | None = None
        self.topic: str | None = None
        self.join_ref: str | None = None
        self.bad_frames = 0
        self.joining = False  # a join is under way (it may wait in a waiting room)
        self.join_deadline = trio.CancelScope()

    async def run(self) -> None:
        """Read and answer frames until the socket closes; the peer then leaves its room."""
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self._close_unless_joined)
                await self._read_loop()
                nursery.cancel_scope.cancel()
        finally:
            if self.link is not None:
                self.link.leave("connection closed")

    async def _close_unless_joined(self) -> None:
        """Close the socket when it has not joined a room within JOIN_TIMEOUT of opening."""
        with self.join_deadline:
            await trio.sleep(JOIN_TIMEOUT)
            self.metrics.connections_refused.labels("join_timeout").inc()
            throttled.info("socket closed: no join", remote=self.remote[0], limit_s=JOIN_TIMEOUT)
            await self.websocket.aclose(POLICY_VIOLATION, f"join a room within {JOIN_TIMEOUT:g} s of connecting")

    async def _read_loop(self) -> None:
        while True:
            try:
                message = await receive_within(self.websocket, IDLE_TIMEOUT)
            except ConnectionClosed as closed:
                frame_too_large(closed, self.metrics, self.remote, self.context.config().server.max_frame_size)
                return
            if message is None:
                throttled.info("socket closed: no heartbeat", remote=self.remote[0], idle_s=IDLE_TIMEOUT)
                await self.websocket.aclose(POLICY_VIOLATION, "no heartbeat")
                return
            self.metrics.messages_in.labels("phoenix").inc()
            try:
                frame = phoenix.decode(message)
                await self._handle(frame)
            except ProtocolError as error:
                if not await self._protocol_error(str(error)):
                    return

    async def _protocol_error(self, what: str, frame: Frame | None = None) -> bool:
        """Tell the client what was wrong; returns False once it has done so too often (socket closed)."""
        self.bad_frames += 1
        self.metrics.errors.labels("bad_frame").inc()
        throttled.info("bad frame", remote=self.remote[0], error=what)
        if self.bad_frames > MAX_BAD_FRAMES:
            await self.websocket.aclose(POLICY_VIOLATION, "too many malformed frames")
            return False
        if frame is not None:
            await self._send(phoenix.reply(frame, "error", {"reason": what}))
        else:
            await self._send(phoenix.push(None, phoenix.PHOENIX_TOPIC, phoenix.ERROR, {"reason": f"malformed frame: {what}"}))
        return True

    async def _send(self, frame: Frame) -> None:
        try:
            await self.websocket.send_message(frame.encode())
            self.metrics.messages_out.labels("phoenix").inc()
        except ConnectionClosed:
            pass

    async def _handle(self, frame: Frame) -> None:
        if frame.topic == phoenix.PHOENIX_TOPIC:
            if frame.event == phoenix.HEARTBEAT:
                await self._send(phoenix.reply(frame, "ok"))
            else:
                await self._protocol_error(f"unknown event {frame.event!r} on topic phoenix", frame)
            return
        if frame.event == phoenix.JOIN:
            if self.joining:
                await self._send(phoenix.reply(frame, "error", {"reason": "this connection is joining a room already; "
                                                                          "one room per connection"}))
                return
            # In a task: a join may wait in a waiting room, and meanwhile the socket is still read
            # (heartbeats answered, a page that gives up seen at once).
            self.joining = True
            self.nursery.start_soon(self._join, frame)
            return
        if frame.topic != self.topic:
            await self._send(phoenix.reply(frame, "error", {"reason": "unmatched topic"}))
            return
        if frame.event == phoenix.LEAVE:
            await self._leave(frame)
        elif frame.event == MEDIA_EVENT:
            payload = frame.payload
            if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
                await self._protocol_error('mediaEvent payload must be {"data": "<JSON string>"}', frame)
                return
            assert self.link is not None
            await self.link.send(MediaEvent(payload["data"]))
        elif frame.event == CHAT:
            await self._chat(frame)
        elif frame.event == MODERATE:
            await self._moderate(frame)
        else:
            await self._protocol_error(f"unknown event {frame.event!r}", frame)

    async def _chat(self, frame: Frame) -> None:
        """A chat message: sent to everyone in the room, or refused with a reason its sender reads."""
        payload = frame.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            await self._protocol_error('chat payload must be {"text": "..."}', frame)
            return
        assert self.link is not None
        try:
            message_id = await self.link.send(ChatPost(payload["text"]))
        except ChatRefused as refused:
            self.metrics.chat_refused.labels(refused.code).inc()
            log.debug("chat refused", code=refused.code, reason=refused.reason)  # a flood would flood the log too
            await self._send(phoenix.reply(frame, "error", {"reason": refused.reason, "code": refused.code}))
            return
        self.metrics.chat_messages.inc()
        await self._send(phoenix.reply(frame, "ok", {"id": message_id}))

    async def _moderate(self, frame: Frame) -> None:
        """A moderation request: carried out, or refused with a reason its sender reads."""
        assert self.link is not None
        try:
            request = parse_request(frame.payload)
            await self.link.send(request)
        except ModerationRefused as refused:
            await self._send(phoenix.reply(frame, "error", {"reason": refused.reason, "code": refused.code}))
            return
        await self._send(phoenix.reply(frame, "ok", {"action": request.action, "peer": request.peer}))

    async def _join(self, frame: Frame) -> None:
        try:
            await self._enter(frame)
        finally:
            self.joining = False

    def _waiting(self, frame: Frame, where: dict) -> None:
        """The join waits in the room's waiting room: the page is told, and the socket may wait too."""
        self.join_deadline.cancel()
        self.nursery.start_soon(self._send, phoenix.push(frame.join_ref, frame.topic, LOBBY, where))

    async def _enter(self, frame: Frame) -> None:
        name = phoenix.room_name(frame.topic)
        if name is None:
            await self._send(phoenix.reply(frame, "error", {
                "reason": f"unknown topic {shown_name(frame.topic)}; join \"room:NAME\""}))
            return
        if self.topic is not None:
            await self._send(phoenix.reply(frame, "error", {
                "reason": f"this connection is already in room '{phoenix.room_name(self.topic)}'; one room per connection"}))
            return
        if frame.payload is not None and not isinstance(frame.payload, dict):
            await self._protocol_error('join params must be an object: {"displayName": "...", "password": "..."}', frame)
            return
        params = frame.payload or {}
        display = params.get("displayName", params.get("name", ""))
        password, token = params.get("password"), params.get("token") or self.token
        if not isinstance(display, str) or not all(v is None or isinstance(v, str) for v in (password, token)):
            await self._protocol_error("join params displayName, password and token must be strings", frame)
            return
        try:
            link = await self.context.rooms.join(name, display, password, kind="rtc", address=self.remote[0],
                                                 token=token, waiting=lambda where: self._waiting(frame, where))
        except JoinRefused as refused:
            self.metrics.joins_refused.labels(refused.code).inc()
            throttled.info("join refused", room=name[:80], code=refused.code, reason=refused.reason,
                     remote=self.remote[0])
            await self._send(phoenix.reply(frame, "error", {"reason": refused.reason, "code": refused.code}))
            return
        self.metrics.joins.labels("rtc").inc()
        self.join_deadline.cancel()
        connection_slot.joined()
        self.link, self.topic, self.join_ref = link, frame.topic, frame.join_ref
        structlog.contextvars.bind_contextvars(room=name, peer=link.id)
        # "simulcast": whether the room takes layers, so that the page knows whether to send them;
        # "moderator": whether it shows the moderation controls (the room checks every request anyway).
        await self._send(phoenix.reply(frame, "ok", {"peer_id": link.id, "simulcast": link.settings.simulcast,
                                                     "moderator": getattr(link, "moderator", False)}))
        self.nursery.start_soon(self._pump, link, frame.topic, frame.join_ref)

    async def _leave(self, frame: Frame) -> None:
        assert self.link is not None
        self.link.leave("left")
        connection_slot.left()
        self.link = None
        self.topic = self.join_ref = None
        await self._send(phoenix.reply(frame, "ok"))
        await self._send(phoenix.push(frame.join_ref, frame.topic, phoenix.CLOSE, {}))

    async def _pump(self, link: ParticipantLink, topic: str, join_ref: str | None) -> None:
        """Send what the room sends to the socket; when the room lets go, tell the client why."""
        async for message in link:
            if not await send_or_drop(self.websocket, self.stream, outgoing(join_ref, topic, message).encode(), self.metrics):
                return
            self.metrics.messages_out.labels("phoenix").inc()
        closed = link.closed
        reason = closed.reason if closed is not None else "removed"
        if reason == "left" or self.link is not link:
            return  # the client asked to leave; it has its answer already
        self.link = None
        self.topic = self.join_ref = None
        connection_slot.left()
        if closed is not None and closed.cut_off:
            self.metrics.errors.labels("slow_consumer").inc()
            throttled.warning("peer cut off", reason=reason)
            await close_within(self.websocket, self.stream, POLICY_VIOLATION, reason[:120])
        else:
            # phx_error makes phoenix.js rejoin the channel by itself, with backoff;
            # phx_close ends the channel for good. "retry": the media path broke, and a
            # client that joins again (with a new media connection) may well get through.
            rejoin, retry = (closed.rejoin, closed.retry) if closed is not None else (False, False)
            event = phoenix.ERROR if rejoin else phoenix.CLOSE
            payload = {"reason": reason, "retry": True} if retry and not rejoin else {"reason": reason}
            await self._send(phoenix.push(join_ref, topic, event, payload))
            if self.context.draining():
                await self.websocket.aclose(GOING_AWAY, reason[:120])


def outgoing(join_ref: str | None, topic: str, message: FromRoom) -> Frame:
    """What the room sent as the frame that carries it: a media event's JSON text as a
    ``mediaEvent`` push, a :class:`ChannelPush` (chat) as a push of its own event."""
    if isinstance(message, ChannelPush):
        return phoenix.push(join_ref, topic, message.event, message.payload)
    if isinstance(message, MediaEvent):
        return phoenix.push(join_ref, topic, MEDIA_EVENT, {"data": message.data})
    raise TypeError(f"a Phoenix channel cannot carry {message!r}")
