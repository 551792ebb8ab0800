"""``/signaling/NAME``: the WebSocket relay for apps that do their own peer-to-peer WebRTC.

Credentials (query string ``username``/``password``/``token``, or a
``credentials`` cookie holding that JSON) are checked before the upgrade:
401 when the room's password does not match or its access token is
refused, 404 for no such room, 400 for a malformed request. Then the peer
joins the room (``max_peers`` applies) and gets ``authenticated``, and every
message it sends, ``from`` set here, goes over its participant link; the
room side announces arrivals and departures and routes each message to the
peers it names.
"""

from __future__ import annotations

from contextlib import suppress

import structlog
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from .. import json_limits
from ..auth.tokens import AccessToken
from ..config.validate import ROOM_NAME_RULE, is_room_name
from ..context import Context
from ..http import limits as connection_slot
from ..http.request import Request
from ..logs.ratelimit import ThrottledLog
from ..metrics import Metrics
from ..rooms import JoinRefused
from ..rooms.link import FromRoom, ParticipantLink, PeerJoined, PeerLeft, RelaySend, RelayText
from . import relay_protocol as rp
from .websocket import (GOING_AWAY, NORMAL, POLICY_VIOLATION, HandshakeFailed, accepted, close_within, frame_too_large,
                        origin_allowed, receive_within, refuse, send_or_drop)

log = structlog.get_logger("videoroomd.relay")
throttled = ThrottledLog(log)

PREFIX = "/signaling/"
IDLE_TIMEOUT = 300.0  # seconds without a message (WebSocket pings count) before a client is dropped
MAX_BAD_MESSAGES = 20


class _Refusal(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def _credentials(request: Request) -> dict:
    query = request.query
    if "username" in query or "password" in query or "token" in query:
        given = {"username": query.get("username", ""), "password": query.get("password", "")}
        return given | ({"token": query["token"]} if "token" in query else {})
    cookie = request.cookies.get("credentials")
    if cookie is None:
        return {}
    try:
        value = json_limits.loads(cookie)
    except json_limits.JsonError:
        raise _Refusal(400, "the credentials cookie must hold JSON {\"username\": ..., \"password\": ...}") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Refusal(400, "the credentials cookie must hold JSON {\"username\": ..., \"password\": ...}")
    return value


# The HTTP status of a join refused before the upgrade, by JoinRefused.code.
_REFUSAL_STATUS = {"bad_room_name": 400, "unknown_room": 404, "wrong_password": 401, "too_many_attempts": 429,
                   "token_required": 401, "no_join_grant": 403}


def _status(code: str) -> int:
    """The HTTP status of a join refused with ``code``; every refused token is a 401."""
    return 401 if code.startswith("token_") else _REFUSAL_STATUS.get(code, 503)


def _check(request: Request, context: Context) -> tuple[str, AccessToken | None]:
    """The room name and the checked access token, once the request may be upgraded; raises _Refusal otherwise.

    The room's checks (name, password, wrong-password throttle by client
    address) are the registry's, the same as a Phoenix join's; no room is made here.
    """
    name = request.path[len(PREFIX):]
    if not is_room_name(name):
        raise _Refusal(400, f"expected /signaling/ROOM: {ROOM_NAME_RULE}")
    if not origin_allowed(request, context.config().server.allowed_origins):
        raise _Refusal(403, f"origin {request.headers.get('origin')} is not allowed here")
    credentials = _credentials(request)
    try:
        token = credentials.get("token") or None  # "?token=" with nothing: no token
        ticket = context.rooms.admit(name, credentials.get("password", ""), request.remote[0], token)
    except JoinRefused as refused:
        context.metrics.joins_refused.labels(refused.code).inc()
        raise _Refusal(_status(refused.code), refused.reason) from None
    return name, ticket


async def serve_relay(context: Context, request: Request, stream: trio.abc.Stream) -> None:
    """Serve one ``/signaling/NAME`` connection until it closes. Never raises for client faults."""
    try:
        name, ticket = _check(request, context)
    except _Refusal as refusal:
        context.metrics.connections_refused.labels(f"relay_{refusal.status}").inc()
        throttled.info("relay connection refused", status=refusal.status, reason=str(refusal), remote=request.remote[0])
        await refuse(stream, refusal.status, str(refusal))
        return
    try:
        async with accepted(stream, context.config().server.max_frame_size, context.metrics) as websocket:
            await _relay(websocket, stream, name, ticket, request, context)
    except HandshakeFailed as failed:
        throttled.info("relay socket dropped before it opened", reason=str(failed), remote=request.remote[0])


async def _relay(websocket: WebSocketConnection, stream: trio.abc.Stream, name: str, ticket: AccessToken | None,
                 request: Request, context: Context) -> None:
    metrics = context.metrics
    try:
        credentials = _credentials(request)
        link = await context.rooms.enter(name, credentials.get("username", "") or "peer",
                                         credentials.get("password"), kind="relay", ticket=ticket)
    except JoinRefused as refused:
        metrics.joins_refused.labels(refused.code).inc()
        with suppress(ConnectionClosed):  # the client may be gone already; it was refused either way
            await websocket.send_message(rp.error("", rp.COULD_NOT_JOIN, refused.reason))
            await websocket.aclose(POLICY_VIOLATION, refused.reason[:120])
        return
    metrics.joins.labels("relay").inc()
    connection_slot.joined()
    structlog.contextvars.bind_contextvars(room=name, peer=link.id)
    try:
        # The first frame, before anything the room sends: the others heard of it as it joined.
        if await _send(websocket, stream, rp.authenticated(link.id), metrics):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, websocket, stream, link, context)
                max_frame_size = context.config().server.max_frame_size
                await _read(websocket, stream, link, metrics, max_frame_size, request.remote)
                nursery.cancel_scope.cancel()
    finally:
        link.leave("connection closed")


async def _send(websocket: WebSocketConnection, stream: trio.abc.Stream, text: str, metrics: Metrics) -> bool:
    """One frame to the client; returns False once the connection is gone (or was dropped as too slow)."""
    if not await send_or_drop(websocket, stream, text, metrics):
        return False
    metrics.messages_out.labels("relay").inc()
    return True


async def _read(websocket: WebSocketConnection, stream: trio.abc.Stream, link: ParticipantLink, metrics: Metrics,
                max_frame_size: int, remote: tuple[str, int]) -> None:
    bad = 0
    while True:
        try:
            text = await receive_within(websocket, IDLE_TIMEOUT)
        except ConnectionClosed as closed:
            frame_too_large(closed, metrics, remote, max_frame_size)
            return
        if text is None:
            await websocket.aclose(POLICY_VIOLATION, "idle for too long")
            return
        metrics.messages_in.labels("relay").inc()
        try:
            outgoing = rp.parse(text)
        except rp.InvalidMessage as invalid:
            bad += 1
            metrics.errors.labels("bad_frame").inc()
            throttled.info("invalid relay message", remote=remote[0], error=str(invalid))
            if bad > MAX_BAD_MESSAGES:
                await websocket.aclose(POLICY_VIOLATION, "too many invalid messages")
                return
            if not await _send(websocket, stream, rp.error(link.id, rp.INVALID_MESSAGE, str(invalid)), metrics):
                return
            continue
        to = rp.ALL if outgoing.to is None else list(outgoing.to)
        text_out = rp.message(outgoing.event, outgoing.data, sender=link.id, to=to)
        await link.send(RelaySend(text_out, outgoing.to))


def _text(item: FromRoom) -> str:
    """What the room sent, as the relay frame that carries it."""
    if isinstance(item, RelayText):
        return item.text
    if isinstance(item, PeerJoined):
        return rp.joined(item.peer_id)
    if isinstance(item, PeerLeft):
        return rp.left(item.peer_id)
    raise TypeError(f"a relay socket cannot carry {item!r}")


async def _pump(websocket: WebSocketConnection, stream: trio.abc.Stream, link: ParticipantLink,
                context: Context) -> None:
    """Send what the room sends; when the room let go of the peer, say why and close."""
    metrics = context.metrics
    async for item in link:
        if not await _send(websocket, stream, _text(item), metrics):
            return
    closed = link.closed
    reason = closed.reason if closed is not None else ""
    try:
        if closed is not None and closed.cut_off:
            metrics.errors.labels("slow_consumer").inc()
            throttled.warning("peer cut off", reason=reason)
            await close_within(websocket, stream, POLICY_VIOLATION, reason[:120])
        elif reason not in ("left", "connection closed"):
            await websocket.send_message(rp.error(link.id, rp.ROOM_CLOSED, reason))
            await websocket.aclose(GOING_AWAY if context.draining() else NORMAL, reason[:120])
    except ConnectionClosed:
        pass
