"""The recordings page: ``/recordings`` (the page), ``/api/recordings`` (the list), ``/recordings/files/ID/NAME``.

Who may: the operator (``[server] admin_token``, as ``Authorization: Bearer``
or the page's credential) sees every recording; whoever gives a room's
``recording_password`` sees that room's only. The page keeps the credential in
a cookie (``videoroomd_recordings``, path ``/recordings``/``/api/recordings``)
so that the browser's own requests for a video (with ranges) carry it. Anything
else is answered 403 with one fixed text: nothing tells whether a room or a
recording exists.

Files: only the WebM files of an export, with HTTP range requests (RFC 9110
section 14), ``video/webm``; the track files stay on the disk.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from pathlib import Path

from ..context import Context
from ..http.request import Request, Response
from ..recording.store import RecordingInfo, find, recordings

COOKIE = "videoroomd_recordings"
FORBIDDEN = "no recordings for this credential: give a room's recording password or the admin token"
FILE = re.compile(r"\A[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})?\.webm\Z")
MAX_CREDENTIAL = 2048       # bytes of the cookie's value
MAX_RANGE = 8 * 1024 * 1024  # bytes sent for one range request (the browser asks for the rest)
MAX_WHOLE = 256 * 1024 * 1024  # bytes of a file sent whole (a download without a range)
NO_STORE = [("cache-control", "no-store"), ("referrer-policy", "no-referrer")]
_RANGE = re.compile(r"\Abytes=(\d*)-(\d*)\Z")


def _credential(context: Context, request: Request) -> tuple[bool, str | None] | None:
    """(admin, room) the request may see: (True, None) for the operator, (False, ROOM) for one
    room's password; None for nothing."""
    config = context.config()
    token = config.server.admin_token
    scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
    if token is not None and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True, None
    raw = request.cookies.get(COOKIE, "")
    if not raw or len(raw) > MAX_CREDENTIAL:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    admin, room, password = value.get("admin"), value.get("room"), value.get("password")
    if token is not None and isinstance(admin, str) and hmac.compare_digest(admin.encode(), token.encode()):
        return True, None
    if not isinstance(room, str) or not isinstance(password, str):
        return None
    settings = config.rooms.get(room)
    if settings is None and config.server.dynamic_rooms:
        settings = config.room_from_defaults(room)
    wanted = settings.recording_password if settings is not None else None
    if wanted is None or not hmac.compare_digest(password.encode(), wanted.encode()):
        return None
    return False, room


def _directory(context: Context) -> Path | None:
    return context.config().recording.directory


def _visible(context: Context, request: Request) -> tuple[Path, str | None] | None:
    """(directory, room or None for all) this request may list; None: 403."""
    allowed = _credential(context, request)
    directory = _directory(context)
    if allowed is None or directory is None:
        return None
    return directory, allowed[1]


async def page(context: Context, request: Request) -> Response | None:
    from .pages import _static

    return _static("recordings.html", request)


async def listing(context: Context, request: Request) -> Response:
    """The recordings this credential may see, newest first, as JSON; 403 otherwise."""
    visible = _visible(context, request)
    if visible is None:
        return Response.text(403, FORBIDDEN)
    directory, room = visible
    rows = [_row(info) for info in reversed(recordings(directory, room))]
    return Response(200, json.dumps({"recordings": rows}).encode(), "application/json", headers=NO_STORE)


def _row(info: RecordingInfo) -> dict:
    row = info.as_dict()
    row["files"] = [{"name": name, "bytes": (info.path / name).stat().st_size,
                     "url": f"/recordings/files/{info.id}/{name}"} for name in info.exports]
    return row


async def file(context: Context, request: Request) -> Response:
    """One WebM of a recording the credential may see, whole or the range asked; 403 for anything
    it may not see (or that does not exist: the same answer), 416 for a range past its end."""
    visible = _visible(context, request)
    parts = request.path[len("/recordings/files/"):].split("/")
    if visible is None or len(parts) != 2 or not FILE.match(parts[1]):
        return Response.text(403, FORBIDDEN)
    directory, room = visible
    info = find(directory, parts[0])
    if info is None or (room is not None and info.room != room) or parts[1] not in info.exports:
        return Response.text(403, FORBIDDEN)
    path = info.path / parts[1]
    size = path.stat().st_size
    headers = [("accept-ranges", "bytes"), *NO_STORE,
               ("content-disposition", f'inline; filename="{info.room or "recording"}-{info.id}-{parts[1]}"')]
    wanted = request.headers.get("range")
    if wanted is None:
        if size > MAX_WHOLE:
            return Response.text(413, f"this file is {size} bytes; ask for it in ranges (Range: bytes=START-END)")
        return Response(200, path.read_bytes(), "video/webm", headers=headers)
    span = _span(wanted.strip(), size)
    if span is None:
        return Response(416, b"", "text/plain", headers=[("content-range", f"bytes */{size}"), *NO_STORE])
    start, end = span
    with path.open("rb") as handle:
        handle.seek(start)
        body = handle.read(end - start + 1)
    return Response(206, body, "video/webm", headers=[("content-range", f"bytes {start}-{end}/{size}"), *headers])


def _span(value: str, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of one range ``bytes=A-B``, ``bytes=A-`` or ``bytes=-N`` within ``size``
    (at most MAX_RANGE bytes); None when it does not fit (several ranges are not served)."""
    match = _RANGE.match(value)
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, start + MAX_RANGE - 1)
