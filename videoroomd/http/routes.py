"""The one route table: every path the port answers, HTTP and WebSocket, and who answers it.

Handlers get the daemon's :class:`~videoroomd.context.Context` bound here,
never the daemon. This module imports the handlers; no handler imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Awaitable, Callable, Generic, TypeVar

import trio

from ..context import Context
from ..signalling import peer_channel, relay
from ..web import recordings_page
from ..web.pages import Pages
from . import api, status
from .request import Request, Response

HttpHandler = Callable[[Request], Awaitable[Response | None]]  # None: nothing there (404)
WebSocketHandler = Callable[[Request, trio.abc.Stream], Awaitable[None]]
H = TypeVar("H")


@dataclass(frozen=True)
class Route(Generic[H]):
    """``path`` exactly, or with ``prefix`` every path that starts with it."""

    path: str
    handler: H
    prefix: bool = False

    def matches(self, path: str) -> bool:
        return path == self.path or (self.prefix and path.startswith(self.path))


@dataclass(frozen=True)
class Routes:
    """HTTP routes and WebSocket routes, each looked up in order."""

    http: tuple[Route[HttpHandler], ...]
    websocket: tuple[Route[WebSocketHandler], ...]

    def http_handler(self, path: str) -> HttpHandler | None:
        return next((route.handler for route in self.http if route.matches(path)), None)

    def websocket_handler(self, path: str) -> WebSocketHandler | None:
        return next((route.handler for route in self.websocket if route.matches(path)), None)


def route_table(context: Context) -> Routes:
    """Every route of the port, its handlers bound to ``context``."""
    pages = Pages(context)
    return Routes(
        http=(
            Route("/healthz", partial(status.healthz, context)),
            Route("/metrics", partial(status.metrics, context)),
            Route("/admin/rooms", partial(status.admin_rooms, context)),
            Route(api.PREFIX, partial(api.handle, context), prefix=True),
            Route("/socket/", status.websocket_only, prefix=True),
            Route("/signaling/", status.websocket_only, prefix=True),
            Route("/", pages.index),
            Route("/index.html", pages.index),
            Route("/room/", pages.room, prefix=True),
            Route("/static/", pages.static, prefix=True),
            Route("/api/rooms", pages.rooms),
            Route("/check", pages.check_page),
            Route("/api/check", pages.check),
            Route("/api/check/media", pages.check_media),
            Route("/favicon.ico", pages.favicon),
            Route("/recordings", partial(recordings_page.page, context)),
            Route("/api/recordings", partial(recordings_page.listing, context)),
            Route("/recordings/files/", partial(recordings_page.file, context), prefix=True),
        ),
        websocket=(
            Route(peer_channel.PATH, partial(peer_channel.serve_socket, context)),
            Route(relay.PREFIX, partial(relay.serve_relay, context), prefix=True),
        ),
    )
