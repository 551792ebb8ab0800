"""One HTTP/1.1 POST over trio (h11; TLS through ``ssl`` for https), with one deadline and strict caps.

No redirect is followed (a 3xx answer is a failure: the URL is wrong, and a
signed event must not travel on to where a Location points), no connection
kept, and at most ``MAX_ANSWER_HEAD`` bytes of the answer's head and
``MAX_ANSWER_BODY`` of its body are read: an endpoint cannot make the daemon
hold more than that, nor wait longer than the deadline, whatever it sends.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio

MAX_ANSWER_HEAD = 16 * 1024  # bytes of the answer's status line and headers (h11 refuses more, one read past it)
MAX_ANSWER_BODY = 16 * 1024  # bytes of the answer's body read (and let go); the rest is never read
RECEIVE_SIZE = 4096
USER_AGENT = "videoroomd-webhooks/1"


class DeliveryFailed(Exception):
    """An attempt that did not get a 2xx answer; ``reason`` is the metric's label, ``detail`` the log's."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # connect, tls, timeout, connection, protocol, redirect, status
        self.detail = detail


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
    """POST ``body`` to ``target``: connect, send, read the answer's head and (capped) body, all
    within ``timeout`` seconds. Returns the 2xx status; raises DeliveryFailed otherwise."""
    try:
        with trio.fail_after(timeout):
            stream = await _connect(target, tls)
            try:
                return await _exchange(stream, target, body, headers)
            finally:
                await trio.aclose_forcefully(stream)
    except trio.TooSlowError:
        raise DeliveryFailed("timeout", f"no answer within {timeout:g} s") from None
    except trio.BrokenResourceError as error:
        if isinstance(error.__cause__, ssl.SSLError):
            raise DeliveryFailed("tls", _tls_reason(error.__cause__)) from None
        raise DeliveryFailed("connection", "the connection broke") from None
    except ssl.SSLError as error:
        raise DeliveryFailed("tls", _tls_reason(error)) from None
    except (h11.RemoteProtocolError, h11.LocalProtocolError) as error:
        raise DeliveryFailed("protocol", f"not an HTTP/1.1 answer: {str(error)[:100]}") from None


async def _connect(target: Target, tls: ssl.SSLContext | None) -> trio.abc.Stream:
    try:
        stream: trio.abc.Stream = await trio.open_tcp_stream(target.host, target.port)
    except OSError as error:
        raise DeliveryFailed("connect", (error.strerror or str(error) or type(error).__name__)[:200]) from None
    if target.https:
        context = tls if tls is not None else _default_tls()
        stream = trio.SSLStream(stream, context, server_hostname=target.host, https_compatible=True)
    return stream


async def _exchange(stream: trio.abc.Stream, target: Target, body: bytes, headers: list[tuple[str, str]]) -> int:
    connection = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_ANSWER_HEAD)
    request = h11.Request(method="POST", target=target.path, headers=[
        ("Host", target.host_header), ("User-Agent", USER_AGENT), ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))), ("Connection", "close"), *headers])
    await stream.send_all(connection.send(request) + connection.send(h11.Data(data=body))
                          + connection.send(h11.EndOfMessage()))
    answer = await _next(stream, connection, (h11.Response,))
    assert isinstance(answer, h11.Response)
    await _read_body(stream, connection)
    status = answer.status_code
    if 300 <= status < 400:
        raise DeliveryFailed("redirect", f"answered {status}: redirects are not followed; give the final URL")
    if not 200 <= status < 300:
        raise DeliveryFailed("status", f"answered {status}")
    return status


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


async def _read_body(stream: trio.abc.Stream, connection: h11.Connection) -> None:
    """Read the answer's body up to MAX_ANSWER_BODY bytes, and let it go."""
    read = 0
    while read <= MAX_ANSWER_BODY:
        event = await _next(stream, connection, (h11.Data, h11.EndOfMessage))
        if isinstance(event, h11.EndOfMessage):
            return
        assert isinstance(event, h11.Data)
        read += len(event.data)


def _tls_reason(error: ssl.SSLError) -> str:
    return getattr(error, "verify_message", None) or error.reason or type(error).__name__


_context: ssl.SSLContext | None = None


def _default_tls() -> ssl.SSLContext:
    """The system's trusted certificates (or SSL_CERT_FILE's), made once."""
    global _context
    if _context is None:
        _context = ssl.create_default_context()
    return _context
