"""Serve the web client: `/` (room list), `/room/NAME` (join screen), `/check` (connectivity
check), `/static/…`, `/api/rooms`, `/api/check`."""

from __future__ import annotations

import hashlib
import json
import math
import mimetypes
import time
from importlib import resources
from typing import TYPE_CHECKING

from ..config.validate import ROOM_NAME
from ..http.request import Request, Response
from .check import CheckLimiter, check_servers

if TYPE_CHECKING:
    from ..daemon.daemon import Daemon

STATIC = resources.files("videoroomd.web").joinpath("static")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# Everything is revalidated on each load (an upgraded daemon must never run with
# yesterday's modules); the ETag makes a revalidation a 304 without a body.
CACHE = "no-cache"
SECURITY_HEADERS = [
    ("content-security-policy",
     "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; img-src 'self' data:; "
     "style-src 'self'; script-src 'self'; frame-ancestors 'self'"),
    ("referrer-policy", "no-referrer"),
    ("permissions-policy", "camera=(self), microphone=(self)"),
]


def _static(path: str, request: Request) -> Response | None:
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") for p in parts):
        return None
    target = STATIC
    for part in parts:
        target = target.joinpath(part)
    try:
        if not target.is_file():
            return None
        body = target.read_bytes()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte...: nothing there
        return None
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
    content_type = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
    headers = [("cache-control", CACHE), ("etag", etag), *SECURITY_HEADERS]
    if etag in request.headers.get("if-none-match", ""):
        return Response(304, b"", content_type, headers=headers)
    return Response(200, body, content_type, headers=headers)


def public_rooms(daemon: "Daemon") -> dict:
    """What anyone may know of the rooms: names, how full, whether they need a password."""
    rooms = []
    for name, config in daemon.config.rooms.items():
        room = daemon.rooms.get(name)
        rooms.append({"name": name, "people": room.peer_count("rtc") if room else 0,
                      "max_peers": config.max_peers, "password": config.password is not None})
    return {"rooms": rooms, "dynamic_rooms": daemon.config.server.dynamic_rooms}


def page_handler(daemon: "Daemon"):
    checks = CheckLimiter()

    def check(request: Request) -> Response:
        wait = checks.allow(request.remote[0], time.monotonic())
        if wait:
            return Response.text(429, f"too many connectivity checks from {request.remote[0]}; "
                                      f"try again in {math.ceil(wait)} s")
        body = json.dumps(check_servers(daemon.turn_credentials.builtin, time.time())).encode()
        return Response(200, body, "application/json", headers=[("cache-control", "no-store")])

    async def handle(request: Request) -> Response | None:
        path = request.path
        if path == "/" or path == "/index.html":
            return _static("index.html", request)
        if path.startswith("/room/"):
            name = path[len("/room/"):]
            if not ROOM_NAME.match(name):
                return Response.text(404, "no such room")
            return _static("index.html", request)
        if path.startswith("/static/"):
            return _static(path[len("/static/"):], request)
        if path == "/api/rooms":
            body = json.dumps(public_rooms(daemon)).encode()
            return Response(200, body, "application/json", headers=[("cache-control", "no-store")])
        if path == "/check":
            return _static("check.html", request)
        if path == "/api/check":
            return check(request)
        if path == "/favicon.ico":
            return _static("favicon.svg", request)
        return None

    return handle
