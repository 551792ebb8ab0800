"""Routes of the one port: what each path answers."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Awaitable, Callable

import structlog
import trio

from ..logs.ratelimit import ThrottledLog
from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .hosts import WILDCARDS, HostPolicy, is_loopback_address
from .limits import TOTAL, OpenConnections
from .ratelimit import ConnectionRateLimit
from .request import Request, Response
from .server import send_error

if TYPE_CHECKING:
    from ..daemon.daemon import Daemon

log = structlog.get_logger("videoroomd.http")
throttled = ThrottledLog(log)

WebSocketHandler = Callable[[Request, trio.abc.Stream], Awaitable[None]]


class DaemonApp:
    """Answers HTTP requests and hands WebSocket upgrades to their endpoint."""

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        self.rate_limit = ConnectionRateLimit(daemon.config.server.connections_per_second)
        self.open = OpenConnections()
        self._hosts: tuple[object, HostPolicy] | None = None
        # Filled in by the signalling and web packages; path prefix → handler.
        self.websocket_routes: dict[str, WebSocketHandler] = {}
        self.page_handler: Callable[[Request], Awaitable[Response | None]] | None = None
        server = daemon.config.server
        if server.hostnames is None and server.host in WILDCARDS:
            log.warning("listening on every address and answering any Host; set [server] hostnames to the names "
                        "this server is reached by, so that other sites' pages cannot reach it by DNS rebinding",
                        listen=server.listen)

    # -- connections ---------------------------------------------------------------------
    def admit(self, remote: tuple[str, int]) -> Response | None:
        server = self.daemon.config.server
        if not self.rate_limit.allow(remote[0], trio.current_time()):
            return self._refuse(remote, "rate_limit", 429, "too many new connections from your address; slow down")
        over = self.open.open(remote[0], server.max_connections, server.max_connections_per_address)
        if over == TOTAL:
            return self._refuse(remote, over, 503, "the server has too many connections open; try again later")
        if over is not None:
            return self._refuse(remote, over, 429, f"too many connections open from your address "
                                                   f"(at most {server.max_connections_per_address})")
        self.daemon.metrics.connections_open.inc()
        return None

    def _refuse(self, remote: tuple[str, int], reason: str, status: int, text: str) -> Response:
        self.daemon.metrics.connections_refused.labels(reason).inc()
        throttled.warning("connection refused", reason=reason, remote=remote[0])
        return Response.text(status, text)

    def release(self, remote: tuple[str, int]) -> None:
        self.open.close(remote[0])
        self.daemon.metrics.connections_open.dec()

    def failed(self, remote: tuple[str, int], error: BaseException) -> None:
        self.daemon.metrics.connection_errors.inc()
        # Throttled too: a client that found a way to cause this must not fill the disk with tracebacks.
        throttled.error("connection ended by an unexpected error", remote=remote[0], error=repr(error), exc_info=error)

    def bad_request(self, remote: tuple[str, int], reason: str) -> None:
        self.daemon.metrics.connections_refused.labels("bad_request").inc()
        throttled.info("bad request", remote=remote[0], error=reason)

    def refusal(self, request: Request) -> Response | None:
        """421 for a Host this server does not answer to (HTTP and WebSocket alike)."""
        host = request.headers.get("host")
        if self._host_policy().accepts(host, loopback_peer=is_loopback_address(request.remote[0])):
            return None
        self.daemon.metrics.connections_refused.labels("host").inc()
        throttled.warning("request refused: Host not accepted", host=host, remote=request.remote[0])
        if host is None:
            return Response.text(421, "a Host header is required here")
        return Response.text(421, f"this server does not answer to the name {host!r}; see [server] hostnames")

    def _host_policy(self) -> HostPolicy:
        server = self.daemon.config.server
        if self._hosts is None or self._hosts[0] is not server:  # made again after a reload
            self._hosts = (server, HostPolicy(server.hostnames, server.host))
        return self._hosts[1]

    # -- requests ------------------------------------------------------------------------
    async def http(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD are served here\n", headers=[("allow", "GET, HEAD")])
        path = request.path
        if path == "/healthz":
            if self.daemon.draining:
                return Response.text(503, "draining")
            return Response.text(200, "ok")
        if path == "/metrics":
            return Response(200, self.daemon.metrics.render(), METRICS_CONTENT_TYPE)
        if path == "/admin/rooms":
            return self._admin_rooms(request)
        if path.startswith("/socket/") or path.startswith("/signaling/"):
            return Response.text(426, "this address takes WebSocket connections only")
        if self.page_handler is not None:
            page = await self.page_handler(request)
            if page is not None:
                return page
        return Response.text(404, f"nothing at {path}")

    def _admin_allowed(self, request: Request) -> bool:
        token = self.daemon.config.server.admin_token
        if token is not None:
            given = request.headers.get("authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
        return request.from_loopback

    def _admin_rooms(self, request: Request) -> Response:
        if not self._admin_allowed(request):
            return Response.text(403, "the admin view is open only to this machine, asked for by a loopback name "
                                      "(localhost, 127.0.0.1, [::1]) and not through a proxy; or set [server] admin_token")
        body = {
            "draining": self.daemon.draining,
            "config": self.daemon.config.source,
            "rooms": self.daemon.rooms.snapshot(),
            "media_workers": self.daemon.media.snapshot(),
        }
        return Response(200, json.dumps(body, indent=2).encode() + b"\n", "application/json")

    async def websocket(self, request: Request, stream: trio.abc.Stream) -> None:
        for prefix, handler in self.websocket_routes.items():
            if request.path == prefix or (prefix.endswith("/") and request.path.startswith(prefix)):
                await handler(request, stream)
                return
        await send_error(stream, 404, f"no WebSocket endpoint at {request.path}")
