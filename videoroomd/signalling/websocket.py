"""What both WebSocket endpoints share: origin check, refusals before the upgrade, the handshake."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator

import structlog
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream
from wsproto.utilities import LocalProtocolError

from ..http.request import Request
from ..http.server import send_error as refuse
from ..logs.ratelimit import ThrottledLog

if TYPE_CHECKING:
    from ..metrics import Metrics

throttled = ThrottledLog(structlog.get_logger("videoroomd.websocket"))

HANDSHAKE_TIMEOUT = 10.0  # seconds for the WebSocket handshake
MESSAGE_QUEUE = 16         # frames read ahead of the handler before the socket stops reading
CLOSE_TIMEOUT = 2.0        # seconds to say goodbye before the socket is dropped
SEND_TIMEOUT = 15.0        # seconds one frame may take to leave; a client that reads slower is dropped
POLICY_VIOLATION = 1008
GOING_AWAY = 1001
NORMAL = 1000
MESSAGE_TOO_BIG = 1009


class HandshakeFailed(Exception):
    """The client did not complete the WebSocket handshake: too slow, or gone before the 101."""


def origin_allowed(request: Request, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin: it must be ours, or listed. Clients that are not browsers send none."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    origin = origin.lower()
    if "*" in allowed:
        return True
    return origin == request.own_origin or origin in allowed


@asynccontextmanager
async def accepted(stream: trio.abc.Stream, max_frame_size: int,
                   metrics: "Metrics | None" = None) -> AsyncIterator[WebSocketConnection]:
    """Complete the handshake on ``stream`` and yield the open WebSocket; it is closed on exit.

    Raises HandshakeFailed when the client does not finish the handshake in
    time, its connection breaks before the 101 is sent, or the handshake was
    refused (trio-websocket answers a malformed one itself and closes the stream).
    """
    websocket = None
    failure = "timed out"
    try:
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(HANDSHAKE_TIMEOUT) as handshake:
                closed = getattr(stream, "closed", None)  # ReplayStream's: set when the stream is closed
                if closed is not None:
                    nursery.start_soon(_cancel_when_set, closed, handshake)
                try:
                    request = await wrap_server_stream(
                        nursery, stream, message_queue_size=MESSAGE_QUEUE, max_message_size=max_frame_size
                    )
                    websocket = await request.accept()
                except ConnectionClosed:
                    failure = "the connection broke"
            if websocket is None and closed is not None and closed.is_set():
                failure = "refused: not a valid WebSocket handshake"
            if websocket is None:
                nursery.cancel_scope.cancel()
            else:
                try:
                    yield websocket
                finally:
                    await close_within(websocket, stream)
                    nursery.cancel_scope.cancel()
    except* LocalProtocolError:
        # trio-websocket's reader answers a frame over max_frame_size with a close frame, which
        # wsproto refuses to send once this side has sent its own: the client sent on after our
        # close. The socket is closed either way; it is the client's doing, not a fault here.
        if metrics is not None:
            metrics.errors.labels("frame_too_large").inc()
        throttled.info("socket closed: the client sent a frame too large after the close")
    if websocket is None:  # raised here, outside the nursery, so that it is not wrapped in a group
        raise HandshakeFailed(f"WebSocket handshake failed: {failure}")


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def close_within(websocket: WebSocketConnection, stream: trio.abc.Stream, code: int = NORMAL,
                       reason: str | None = None) -> None:
    """Send a close frame and wait for the client's, for at most CLOSE_TIMEOUT; then drop the connection.

    Shielded: it runs on the way out of a cancelled handler too.
    """
    with trio.move_on_after(CLOSE_TIMEOUT) as cleanup:
        cleanup.shield = True
        await websocket.aclose(code, reason)
    if cleanup.cancelled_caught:
        await trio.aclose_forcefully(stream)


async def send_or_drop(websocket: WebSocketConnection, stream: trio.abc.Stream, text: str, metrics: "Metrics") -> bool:
    """Send one frame within SEND_TIMEOUT; returns False when the connection is gone or was cut off.

    The wait for room in the socket comes first, under the socket's own
    writer lock, so that a client that stopped reading is cut off before a
    frame has started: it then gets a close frame (1008) when it reads on.
    A frame that stalls halfway leaves a partial frame on the wire, so then
    the TCP connection is dropped. Either is logged as cut off and counted
    (``slow_consumer``).
    """
    with trio.move_on_after(SEND_TIMEOUT) as waiting:
        try:
            # trio-websocket's lock around its writes: this wait must not run beside a frame being written
            async with websocket._stream_lock:
                await stream.wait_send_all_might_not_block()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
    if waiting.cancelled_caught:
        metrics.errors.labels("slow_consumer").inc()
        throttled.warning("client cut off: it stopped reading", limit_s=SEND_TIMEOUT)
        await close_within(websocket, stream, POLICY_VIOLATION, "reading too slowly")
        return False
    with trio.move_on_after(SEND_TIMEOUT):
        try:
            await websocket.send_message(text)
            return True
        except ConnectionClosed:
            return False
    metrics.errors.labels("slow_consumer").inc()
    throttled.warning("client cut off: a frame took too long to leave", limit_s=SEND_TIMEOUT)
    await trio.aclose_forcefully(stream)
    return False


def frame_too_large(closed: ConnectionClosed, metrics: "Metrics", remote: tuple[str, int], limit: int) -> None:
    """When the socket was closed for a frame over ``max_frame_size`` (1009): count and log it."""
    if closed.reason.code == MESSAGE_TOO_BIG:
        metrics.errors.labels("frame_too_large").inc()
        throttled.info("socket closed: frame too large", remote=remote[0], limit=limit)  # the client's doing


async def receive_within(websocket: WebSocketConnection, seconds: float) -> str | bytes | None:
    """The client's next message, or None when none came within ``seconds`` (an idle client).

    Raises trio_websocket's ConnectionClosed once the socket is closed.
    """
    with trio.move_on_after(seconds):
        return await websocket.get_message()
    return None
