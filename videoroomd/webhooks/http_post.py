"""HTTP/1.1 POSTs over trio (h11; TLS through ``ssl`` for https), one deadline each and strict caps.

A :class:`Connection` keeps its connection open between requests (one URL's
events go one after another, so a TCP and TLS handshake per event would cap
how many a second it can take) and closes it after ``KEEP_IDLE`` seconds
unused. A kept connection the server closed meanwhile is found out by its
first request, which is then sent once more on a new one.

No redirect is followed (a 3xx answer is a failure: the URL is wrong, and a
signed event must not travel on to where a Location points), and at most
``MAX_ANSWER_HEAD`` bytes of an answer's head and ``MAX_ANSWER_BODY`` of its
body are read: an endpoint cannot make the daemon hold more than that, nor
wait longer than the deadline, whatever it sends.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

MAX_ANSWER_HEAD = 16 * 1024  # bytes of the answer's status line and headers (h11 refuses more, one read past it)
MAX_ANSWER_BODY = 16 * 1024  # bytes of the answer's body read (and let go); past it the connection is closed
RECEIVE_SIZE = 4096
KEEP_IDLE = 10.0             # seconds a connection is kept unused (servers commonly close theirs at 5 to 60)
USER_AGENT = "videoroomd-webhooks/1"


class DeliveryFailed(Exception):
    """An attempt that did not get a 2xx answer; ``reason`` is the metric's label, ``detail`` the log's."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # connect, tls, timeout, connection, protocol, redirect, status
        self.detail = detail


class _Stale(Exception):
    """A kept connection was closed by the server before it answered anything."""


@dataclass(frozen=True)
class Target:
    """Where a URL sends a request: the address to connect to and the request line's parts."""

    https: bool
    host: str
    port: int
    host_header: str  # the URL's host[:port], as the Host header says it
    path: str         # path and query: the request target

    @classmethod
    def of(cls, url: str) -> "Target":
        """The target of a URL that passed the config's check (http:// or https://, a host, no user)."""
        parts = urlsplit(url)
        https = parts.scheme == "https"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(https, parts.hostname or "", parts.port or (443 if https else 80), parts.netloc, path)


async def post(target: Target, body: bytes, headers: list[tuple[str, str]], *, timeout: float,
               tls: ssl.SSLContext | None = None) -> int:
    """One POST on a connection of its own (closed after). Returns the 2xx status; raises DeliveryFailed."""
    connection = Connection(target, tls)
    try:
        return await connection.post(body, headers, timeout=timeout)
    finally:
        await connection.aclose()


class Connection:
    """POSTs to one target, one at a time, on a connection kept open between them."""

    def __init__(self, target: Target, tls: ssl.SSLContext | None = None):
        self.target = target
        self.tls = tls
        self._stream: trio.abc.Stream | None = None
        self._http: h11.Connection | None = None
        self._last_used = 0.0
        self.opened = 0  # connections made so far

    async def post(self, body: bytes, headers: list[tuple[str, str]], *, timeout: float) -> int:
        """POST ``body``: (re)connect if needed, send, read the answer's head and (capped) body, all
        within ``timeout`` seconds. Returns the 2xx status; raises DeliveryFailed otherwise."""
        if self._stream is not None and trio.current_time() - self._last_used > KEEP_IDLE:
            await self.aclose()
        try:
            with trio.fail_after(timeout):
                try:
                    return await self._attempt(body, headers)
                except _Stale:  # the server let the kept connection go: once more, on a new one
                    await self.aclose()
                    return await self._attempt(body, headers)
        except BaseException as error:
            await self.aclose()
            _raise_named(error, timeout)
            raise
        finally:
            self._last_used = trio.current_time()

    async def aclose(self) -> None:
        stream, self._stream, self._http = self._stream, None, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def _attempt(self, body: bytes, headers: list[tuple[str, str]]) -> int:
        kept = self._stream is not None
        if self._stream is None:
            self._stream = await _connect(self.target, self.tls)
            self._http = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_ANSWER_HEAD)
            self.opened += 1
        stream, http = self._stream, self._http
        assert http is not None
        request = h11.Request(method="POST", target=self.target.path, headers=[
            ("Host", self.target.host_header), ("User-Agent", USER_AGENT), ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))), *headers])
        try:
            await stream.send_all(http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage()))
            answer = await _next(stream, http, (h11.Response,))
        except (trio.BrokenResourceError, DeliveryFailed, h11.RemoteProtocolError):
            if kept and not http.trailing_data[0]:  # nothing of an answer came: the server had closed it
                raise _Stale() from None
            raise
        assert isinstance(answer, h11.Response)
        if await _read_body(stream, http) and http.our_state is h11.DONE and http.their_state is h11.DONE:
            http.start_next_cycle()  # kept for the next event
        else:
            await self.aclose()
        return _checked(answer.status_code)


def _checked(status: int) -> int:
    if 300 <= status < 400:
        raise DeliveryFailed("redirect", f"answered {status}: redirects are not followed; give the final URL")
    if not 200 <= status < 300:
        raise DeliveryFailed("status", f"answered {status}")
    return status


def _raise_named(error: BaseException, timeout: float) -> None:
    """Raise the DeliveryFailed that names ``error``; returns for what it does not name (cancellation)."""
    if isinstance(error, DeliveryFailed):
        raise error
    if isinstance(error, trio.TooSlowError):
        raise DeliveryFailed("timeout", f"no answer within {timeout:g} s") from None
    if isinstance(error, trio.BrokenResourceError):
        if isinstance(error.__cause__, ssl.SSLError):
            raise DeliveryFailed("tls", _tls_reason(error.__cause__)) from None
        raise DeliveryFailed("connection", "the connection broke") from None
    if isinstance(error, ssl.SSLError):
        raise DeliveryFailed("tls", _tls_reason(error)) from None
    if isinstance(error, (h11.RemoteProtocolError, h11.LocalProtocolError)):
        raise DeliveryFailed("protocol", f"not an HTTP/1.1 answer: {str(error)[:100]}") from None
    if isinstance(error, _Stale):
        raise DeliveryFailed("connection", "closed before answering") from None


async def _connect(target: Target, tls: ssl.SSLContext | None) -> trio.abc.Stream:
    try:
        stream: trio.abc.Stream = await trio.open_tcp_stream(target.host, target.port)
    except OSError as error:
        raise DeliveryFailed("connect", (error.strerror or str(error) or type(error).__name__)[:200]) from None
    if target.https:
        context = tls if tls is not None else _default_tls()
        stream = trio.SSLStream(stream, context, server_hostname=target.host, https_compatible=True)
    return stream


async def _next(stream: trio.abc.Stream, connection: h11.Connection, wanted: tuple[type, ...]) -> object:
    """The connection's next event of a ``wanted`` type (1xx answers skipped); raises DeliveryFailed
    when the other side closes first."""
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError:
            if connection.trailing_data[1]:  # it closed mid-answer (or before one)
                raise DeliveryFailed("connection", "closed before answering in full") from None
            raise
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(RECEIVE_SIZE))  # b"": it closed
        elif isinstance(event, wanted):
            return event
        elif isinstance(event, h11.ConnectionClosed):
            raise DeliveryFailed("connection", "closed before answering")


async def _read_body(stream: trio.abc.Stream, connection: h11.Connection) -> bool:
    """Read the answer's body, and let it go; False when it was longer than MAX_ANSWER_BODY (the
    rest is left unread, and the connection must be closed)."""
    read = 0
    while read <= MAX_ANSWER_BODY:
        event = await _next(stream, connection, (h11.Data, h11.EndOfMessage))
        if isinstance(event, h11.EndOfMessage):
            return True
        assert isinstance(event, h11.Data)
        read += len(event.data)
    return False


def _tls_reason(error: ssl.SSLError) -> str:
    return getattr(error, "verify_message", None) or error.reason or type(error).__name__


_context: ssl.SSLContext | None = None


def _default_tls() -> ssl.SSLContext:
    """The system's trusted certificates (or SSL_CERT_FILE's), made once."""
    global _context
    if _context is None:
        _context = ssl.create_default_context()
    return _context
