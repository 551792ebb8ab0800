"""Serve the web client: `/` (room list), `/room/NAME` (join screen), `/check` (connectivity
check), `/static/…`, `/api/rooms`, `/api/check`, `/api/check/media`. Their paths are given in :mod:`videoroomd.http.routes`."""

from __future__ import annotations

import hashlib
import json
import math
import mimetypes
import re
import time
from importlib import resources

from ..config.validate import ROOM_NAME
from ..context import Context, MediaCheckRefused
from ..http.request import Request, Response
from .check import CheckLimiter, check_servers

RELAY_USER = re.compile(r"check-[0-9a-f]{12}")  # the TURN user /api/check makes for one check
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


def public_rooms(context: Context) -> dict:
    """What anyone may know of the rooms: names, how full, whether they need a password."""
    config = context.config()
    rooms = [{"name": name, "people": context.rooms.people(name),
              "max_peers": room.max_peers, "password": room.password is not None, "recording": room.recording}
             for name, room in config.rooms.items()]
    return {"rooms": rooms, "dynamic_rooms": config.server.dynamic_rooms}


class Pages:
    """The web client's pages and APIs; each method answers one route (None: nothing there, a 404)."""

    def __init__(self, context: Context):
        self.context = context
        self.checks = CheckLimiter()

    async def index(self, request: Request) -> Response | None:
        return _static("index.html", request)

    async def room(self, request: Request) -> Response | None:
        """``/room/NAME``: the join screen (the page reads the name from its address)."""
        if not ROOM_NAME.match(request.path[len("/room/"):]):
            return Response.text(404, "no such room")
        return _static("index.html", request)

    async def static(self, request: Request) -> Response | None:
        return _static(request.path[len("/static/"):], request)

    async def rooms(self, request: Request) -> Response | None:
        body = json.dumps(public_rooms(self.context)).encode()
        return Response(200, body, "application/json", headers=[("cache-control", "no-store")])

    async def check_page(self, request: Request) -> Response | None:
        return _static("check.html", request)

    async def check(self, request: Request) -> Response | None:
        """The connectivity check's servers, at most a few times a minute per address."""
        wait = self.checks.allow(request.remote[0], time.monotonic())
        if wait:
            return Response.text(429, f"too many connectivity checks from {request.remote[0]}; "
                                      f"try again in {math.ceil(wait)} s")
        body = json.dumps(check_servers(self.context.turn.builtin, time.time())).encode()
        return Response(200, body, "application/json", headers=[("cache-control", "no-store")])

    async def check_media(self, request: Request) -> Response | None:
        """``POST /api/check/media[?relay=USER]``: the check's offer (``application/sdp``) in, the media
        ports' answer out; with ``relay``, the offer comes through the built-in TURN server as that user."""
        if request.method != "POST":
            return Response(405, b"only POST is served here: the check page posts its offer\n", headers=[("allow", "POST")])
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/sdp":
            # Not a type a form can send: another site's page cannot make checks in a visitor's name.
            return Response.text(415, "the offer must be sent with Content-Type: application/sdp")
        if self.context.draining():
            return Response.text(503, "the server is stopping; try the check again in a minute")
        try:
            offer = request.body.decode("utf-8")
        except UnicodeDecodeError as error:
            return Response.text(400, f"the offer is not UTF-8 text (byte {error.start})")
        relay_user = request.query.get("relay")
        if relay_user is not None and not RELAY_USER.fullmatch(relay_user):
            return Response.text(400, f"relay={relay_user[:40]!r} is not a check's TURN user (check- and 12 hex digits, "
                                      "as /api/check made it)")
        try:
            answer = await self.context.media_check(offer, request.remote[0], relay_user)
        except MediaCheckRefused as refused:
            return Response.text(refused.status, refused.reason)
        return Response(200, answer.encode(), "application/sdp", headers=[("cache-control", "no-store")])

    async def favicon(self, request: Request) -> Response | None:
        return _static("favicon.svg", request)
