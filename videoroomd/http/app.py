"""Routes of the one port: what each path answers."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Awaitable, Callable

import structlog
import trio

from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .ratelimit import ConnectionRateLimit
from .request import Request, Response
from .server import send_error

if TYPE_CHECKING:
    from ..daemon.daemon import Daemon

log = structlog.get_logger("videoroomd.http")

WebSocketHandler = Callable[[Request, trio.abc.Stream], Awaitable[None]]


class DaemonApp:
    """Answers HTTP requests and hands WebSocket upgrades to their endpoint."""

    def __init__(self, daemon: "Daemon"):
        self.daemon = daemon
        self.rate_limit = ConnectionRateLimit(daemon.config.server.connections_per_second)
        # Filled in by the signalling and web packages; path prefix → handler.
        self.websocket_routes: dict[str, WebSocketHandler] = {}
        self.page_handler: Callable[[Request], Awaitable[Response | None]] | None = None

    def admit(self, remote: tuple[str, int]) -> bool:
        allowed = self.rate_limit.allow(remote[0], trio.current_time())
        if not allowed:
            self.daemon.metrics.connections_refused.labels("rate_limit").inc()
            log.warning("connection refused: too many from one address", remote=remote[0])
        return allowed

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
            return Response.text(403, "the admin view is open to this machine only (or set [server] admin_token)")
        body = {
            "draining": self.daemon.draining,
            "config": self.daemon.config.source,
            "rooms": self.daemon.rooms.snapshot(),
        }
        return Response(200, json.dumps(body, indent=2).encode() + b"\n", "application/json")

    async def websocket(self, request: Request, stream: trio.abc.Stream) -> None:
        for prefix, handler in self.websocket_routes.items():
            if request.path == prefix or (prefix.endswith("/") and request.path.startswith(prefix)):
                await handler(request, stream)
                return
        await send_error(stream, 404, f"no WebSocket endpoint at {request.path}")
