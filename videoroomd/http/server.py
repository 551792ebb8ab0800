"""The listener: accept connections, read request heads, answer them or hand over upgrades.

Each request head is read by hand up to the blank line (bounded in size and
time) and parsed by h11. A WebSocket upgrade is then handed to trio-websocket
over a stream that first replays the head bytes, so trio-websocket performs
the handshake itself; everything else is answered through h11.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import replace
from http import HTTPStatus
from typing import Callable, Protocol
from urllib.parse import urlsplit

import h11
import structlog
import trio

from ..config import ServerConfig
from .accept import serve_listeners
from .isolation import contained
from .limits import IDLE, NOT_JOINED, SERVING, Slot, current_slot
from .request import Request, Response

log = structlog.get_logger("videoroomd.http")

MAX_HEAD = 16 * 1024          # bytes of request line + headers
FIRST_REQUEST_TIMEOUT = 10.0  # seconds from connecting to the first byte of a request: a connection that says
                              # nothing holds a place for no longer (a browser's preconnection is used at once)
HEAD_TIMEOUT = 5.0            # seconds to send a request head, once its first byte is in
IDLE_TIMEOUT = 60.0           # seconds a kept-alive connection may sit idle (pushed out sooner when the house is full)
SEND_TIMEOUT = 15.0           # seconds a response may take to leave; a client that does not read is dropped
REFUSAL_TIMEOUT = 2.0         # seconds to tell a refused connection why (a TLS handshake may never finish)
MAX_BODY = 64 * 1024          # bytes of a request body; only BODY_PATHS read one
# Where a request may carry a body (Content-Length, never chunked): the server API, the check's offer.
BODY_PATHS = ("/api/v1/", "/api/check/media")
SERVER_NAME = b"videoroomd"


class App(Protocol):
    """What the listener asks of the application, connection by connection."""

    def admit(self, remote: tuple[str, int], evict: Callable[[], None]) -> Slot | Response:
        """Take a place for a new connection, or the refusal to send it instead (no place taken).

        ``evict`` ends the connection: called when it is pushed out for a newcomer.
        """

    def release(self, slot: Slot) -> None:
        """The connection :meth:`admit` let in has ended."""

    def client(self, request: Request, slot: Slot) -> Request | Response:
        """The request as from its client (through a trusted proxy: the address it names), or a refusal."""

    def refusal(self, request: Request) -> Response | None:
        """The answer to a request that must not reach :meth:`http` or :meth:`websocket` (wrong Host...)."""

    def bad_request(self, remote: tuple[str, int], reason: str) -> None:
        """A request head was refused as malformed."""

    def out_of_descriptors(self) -> None:
        """A connection could not be accepted for want of file descriptors: free one if a connection can spare it."""

    def failed(self, remote: tuple[str, int], error: BaseException) -> None:
        """The connection ended on an unexpected error (a bug, or a case not foreseen): log and count it."""

    async def http(self, request: Request) -> Response: ...

    async def websocket(self, request: Request, stream: trio.abc.Stream) -> None: ...


class ReplayStream(trio.abc.Stream):
    """A stream that yields ``prefix`` before reading on from ``inner``."""

    def __init__(self, inner: trio.abc.Stream, prefix: bytes):
        self.inner = inner
        self._prefix = prefix
        self.closed = trio.Event()  # set once closed: a handshake refused by the WebSocket code ends at once

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return chunk
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self.closed.set()
        await self.inner.aclose()


class _BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


_BARE_LF = re.compile(rb"(?<!\r)\n")


async def _read_head(stream: trio.abc.Stream, buffer: bytearray, deadline: trio.CancelScope) -> bytes | None:
    """Read up to and including the blank line; ``None`` when the peer closed cleanly.

    Once the first byte of a head is in, the whole head must come within
    HEAD_TIMEOUT: ``deadline`` is brought forward (a client may idle between
    requests, but not trickle one byte at a time).
    """
    while True:
        end = buffer.find(b"\r\n\r\n")
        if _BARE_LF.search(buffer, 0, end if end >= 0 else len(buffer)):
            # Read on, it would wait for a CRLF CRLF that never comes until the head deadline.
            raise _BadRequest("header lines must end in CRLF, not a bare LF")
        if end >= 0:
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            return head
        if len(buffer) > MAX_HEAD:
            raise _BadRequest("request head too large")
        chunk = await stream.receive_some(4096)
        if not chunk:
            if buffer:
                raise _BadRequest("connection closed mid-request")
            return None
        if not buffer:
            deadline.deadline = min(deadline.deadline, trio.current_time() + HEAD_TIMEOUT)
        buffer += chunk


def _parse_head(head: bytes, remote: tuple[str, int], scheme: str) -> tuple[Request, h11.Connection]:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(head)
    try:
        event = connection.next_event()
    except h11.RemoteProtocolError as error:
        raise _BadRequest(str(error)) from None
    if not isinstance(event, h11.Request):
        raise _BadRequest("incomplete request")
    target = event.target.decode("latin-1")
    if not target.startswith("/"):
        raise _BadRequest(f"the request target must be a path starting with '/', not {target[:100]!r}")
    try:
        urlsplit(target)
    except ValueError as error:
        raise _BadRequest(f"the request target cannot be read: {error}") from None
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    # A body this server would not read is the next request's head to it, and not to a
    # proxy in front: a request smuggled in. So there are none, chunked or not.
    if "transfer-encoding" in headers:
        raise _BadRequest("Transfer-Encoding is not accepted: requests here have no body")
    length = int(headers.get("content-length", "0").split(",")[0].strip() or 0)  # h11 checked it is a number
    if length and not target.startswith(BODY_PATHS):
        raise _BadRequest("request bodies are not accepted")
    if length > MAX_BODY:
        raise _BadRequest(f"the request body is {length} bytes; at most {MAX_BODY} are accepted", 413)
    request = Request(event.method.decode("ascii"), target, headers, remote, scheme)
    return request, connection


async def _read_body(stream: trio.abc.Stream, buffer: bytearray, request: Request,
                     connection: h11.Connection) -> Request:
    """``request`` with its body (Content-Length bytes, at most MAX_BODY, within HEAD_TIMEOUT)."""
    length = int(request.headers.get("content-length", "0").split(",")[0].strip() or 0)
    if not length:
        return request
    with trio.move_on_after(HEAD_TIMEOUT):
        while len(buffer) < length:
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise _BadRequest("connection closed mid-body")
            buffer += chunk
    if len(buffer) < length:
        raise _BadRequest(f"the request body did not come within {HEAD_TIMEOUT:g} s")
    body = bytes(buffer[:length])
    del buffer[:length]
    connection.receive_data(body)
    while not isinstance(connection.next_event(), h11.EndOfMessage):
        pass
    return replace(request, body=body)


async def _send(stream: trio.abc.Stream, connection: h11.Connection, response: Response, head_only: bool) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("server", SERVER_NAME.decode()),
        ("x-content-type-options", "nosniff"),
        *response.headers,
    ]
    data = connection.send(h11.Response(status_code=response.status, headers=headers, reason=_phrase(response.status)))
    if not head_only and response.body:
        data += connection.send(h11.Data(data=response.body))
    data += connection.send(h11.EndOfMessage())
    await stream.send_all(data)


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def send_error(stream: trio.abc.Stream, status: int, reason: str) -> None:
    """Answer with a plain-text HTTP error and ``connection: close`` (before or instead of an upgrade)."""
    body = (reason.rstrip("\n") + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {_phrase(status).decode()}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    try:
        await stream.send_all(head.encode() + body)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def _remote_of(stream: trio.abc.Stream) -> tuple[str, int]:
    inner = getattr(stream, "transport_stream", stream)
    try:
        address = inner.socket.getpeername()
        return str(address[0]), int(address[1])
    except (AttributeError, OSError):
        return ("unknown", 0)


async def handle_connection(stream: trio.abc.Stream, app: App, scheme: str) -> None:
    """Serve one connection until it closes, or hand it over to ``app.websocket``.

    Returns when the connection is done, whatever happened on it: any error
    ends this connection only (``app.failed`` hears of it); only cancellation
    propagates.
    """
    remote = _remote_of(stream)
    try:
        await contained(lambda: _admitted(stream, app, scheme, remote), lambda error: app.failed(remote, error))
    finally:
        await trio.aclose_forcefully(stream)


async def _admitted(stream: trio.abc.Stream, app: App, scheme: str, remote: tuple[str, int]) -> None:
    with trio.CancelScope() as connection_scope:  # cancelled when the connection is pushed out for a newcomer
        slot = app.admit(remote, connection_scope.cancel)
        if isinstance(slot, Response):
            with trio.move_on_after(REFUSAL_TIMEOUT):
                await send_error(stream, slot.status, slot.body.decode())
            return
        token = current_slot.set(slot)
        try:
            await _serve(stream, app, scheme, remote, slot)
        finally:
            current_slot.reset(token)
            app.release(slot)


async def _serve(stream: trio.abc.Stream, app: App, scheme: str, remote: tuple[str, int], slot: Slot) -> None:
    try:
        buffer = bytearray()
        wait = FIRST_REQUEST_TIMEOUT
        while True:
            head = None
            with trio.move_on_after(HEAD_TIMEOUT if buffer else wait) as deadline:
                head = await _read_head(stream, buffer, deadline)
            if head is None:
                return  # closed by the client, or idle too long
            slot.mark(SERVING)
            request, connection = _parse_head(head, remote, scheme)
            request = await _read_body(stream, buffer, request, connection)
            request = app.client(request, slot)
            refused = request if isinstance(request, Response) else app.refusal(request)
            if refused is not None:
                with trio.move_on_after(REFUSAL_TIMEOUT):
                    await send_error(stream, refused.status, refused.body.decode())
                return
            if request.is_websocket:
                if not head.isascii():  # the WebSocket handshake code reads the head as ASCII, and raises otherwise
                    raise _BadRequest("a WebSocket upgrade request must be ASCII text")
                slot.mark(NOT_JOINED)
                await app.websocket(request, ReplayStream(stream, head + bytes(buffer)))
                return
            response = await app.http(request)
            with trio.move_on_after(SEND_TIMEOUT) as sending:
                await _send(stream, connection, response, head_only=request.method == "HEAD")
            if sending.cancelled_caught or connection.our_state is h11.MUST_CLOSE:
                return
            slot.mark(IDLE)
            wait = IDLE_TIMEOUT
    except _BadRequest as error:
        app.bad_request(remote, str(error))
        with trio.move_on_after(REFUSAL_TIMEOUT):
            await send_error(stream, error.status, f"bad request: {error}")
    except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
        pass


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server-side TLS context for ``[server] tls_cert``/``tls_key``, or None."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


class ListenError(Exception):
    """The port could not be opened; the message says which address and why."""


async def open_listeners(config: ServerConfig) -> tuple[list[trio.abc.Listener], str, tuple[str, int]]:
    """Bind ``[server] listen`` (TLS-wrapped when configured).

    Returns the listeners, the scheme and the bound ``(host, port)`` (the real
    port when the config says 0). Raises ListenError when the address cannot
    be bound.
    """
    try:
        sockets = await trio.open_tcp_listeners(config.port, host=config.host)
    except OSError as error:
        raise ListenError(f"cannot listen on {config.listen}: {error.strerror or error}") from None
    host, port = sockets[0].socket.getsockname()[:2]
    context = tls_context(config)
    if context is None:
        return list(sockets), "http", (host, port)
    return [trio.SSLListener(s, context, https_compatible=True) for s in sockets], "https", (host, port)


async def serve(listeners: list[trio.abc.Listener], scheme: str, app: App) -> None:
    """Serve connections on ``listeners`` until cancelled; never returns."""

    async def handler(stream: trio.abc.Stream) -> None:
        await handle_connection(stream, app, scheme)

    await serve_listeners(handler, listeners, app.out_of_descriptors)
