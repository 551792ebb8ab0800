"""``/api/v1/...``: the server API, JSON over HTTP for an app server and ``videoroomd room|participant``.

Every request is authenticated first (:func:`authorized`), so that a caller
without a credential learns nothing, not even which rooms exist. Bodies are
JSON objects of at most ``http.server.MAX_BODY`` bytes, read with
:mod:`videoroomd.json_limits`; each refusal is ``{"error": {"code", "message"}}``
with a message that says what was wrong and where. The paths and their
bodies are in docs/api.md. Every room is reached through the room service:
in a cluster it carries each request to the node the room runs on
(``cluster/room_calls.py``), so any node answers for any room.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from ..auth.tokens import TokenRefused, verify
from ..config import ConfigError
from ..config.validate import is_room_name, room_from_settings
from ..context import Context
from ..json_limits import JsonError, loads
from ..rooms import JoinRefused
from ..rooms.moderation import MAX_PEER_ID, MAX_REASON, ModerationRefused, parse_request
from .request import Request, Response

PREFIX = "/api/v1/"
ADMIN_ROOM = "*"              # the room an access token with the admin grant names
EMPTY_TIMEOUT = 300.0         # seconds a room made through the API waits for its first person, by default
MAX_EMPTY_TIMEOUT = 86400.0
MUTES = {"audio": "mute", "video": "stop_video", "screen": "stop_screen"}
# The status of each refusal code; anything else is 400.
STATUS = {"unauthorized": 401, "no_such_room": 404, "no_such_peer": 404, "not_found": 404, "room_exists": 409,
          "not_here": 409, "too_many_rooms": 503, "shutting_down": 503, "failed": 503, "recording_unavailable": 501,
          "recording_refused": 409,
          # in a cluster: the room's node, or the directory that says which it is, did not answer
          "room_unavailable": 503, "node_unreachable": 503, "node_busy": 503, "node_timeout": 504,
          "reply_too_large": 502}


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def answer(status: int, body: dict[str, Any]) -> Response:
    return Response(status, json.dumps(body, indent=2).encode() + b"\n", "application/json")


def refusal(code: str, message: str) -> Response:
    headers = [("www-authenticate", 'Bearer realm="videoroomd"')] if code == "unauthorized" else []
    response = answer(STATUS.get(code, 400), {"error": {"code": code, "message": message}})
    response.headers.extend(headers)
    return response


def authorized(context: Context, request: Request) -> bool:
    """``Authorization: Bearer`` the ``[server] admin_token`` or an access token (room ``*``) with the admin
    grant; with no admin_token set, also a request from this machine that no web page sent (no Origin)."""
    config = context.config()
    scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer" and given:
        admin_token = config.server.admin_token
        if admin_token is not None and hmac.compare_digest(given.encode(), admin_token.encode()):
            return True
        try:
            return verify(given, config.auth.keys, room=ADMIN_ROOM, now=time.time()).grants.admin
        except TokenRefused:
            return False
    return config.server.admin_token is None and request.from_loopback and "origin" not in request.headers


async def handle(context: Context, request: Request) -> Response:
    """Answer one request under ``/api/v1/``; never raises for a caller's mistake."""
    if not authorized(context, request):
        return refusal("unauthorized", "send Authorization: Bearer <[server] admin_token, or an access token "
                                       "with the admin grant>")
    try:
        return await _route(context, request, request.path[len(PREFIX):].strip("/").split("/"))
    except ApiError as error:
        return refusal(error.code, error.message)
    except (ModerationRefused, JoinRefused) as refused:
        return refusal(refused.code, refused.reason)


async def _route(context: Context, request: Request, parts: list[str]) -> Response:
    post = request.method == "POST"
    if parts[0] != "rooms":
        raise ApiError("not_found", f"nothing at {request.path[:100]}; see docs/api.md")
    if len(parts) == 1:
        return await _create(context, _body(request)) if post else answer(200, await context.rooms.rooms())
    name = parts[1]
    if not is_room_name(name):
        raise ApiError("bad_room_name", f"{name[:64]!r} in the path is not a room name")
    rest = parts[2:]
    if not rest and not post:
        return answer(200, await context.rooms.room(name))
    if rest == ["end"] and post:
        reason = _fields(_body(request), {"reason": str}).get("reason", "")
        return answer(200, await context.rooms.moderate(name, parse_request({"action": "end", "reason": reason})))
    if len(rest) == 2 and rest[0] == "recording" and rest[1] in ("start", "stop") and post:
        return answer(200, await context.rooms.record(name, rest[1]))
    if len(rest) == 3 and rest[0] == "participants" and rest[2] in ("remove", "mute") and post:
        return answer(200, await _participant(context, name, rest[1], rest[2], _body(request)))
    raise ApiError("not_found", f"nothing at {request.method} {request.path[:100]}; see docs/api.md")


def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} when it has no body); raises ApiError saying what is wrong."""
    if not request.body:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError("bad_content_type", "the request body must be JSON, sent with Content-Type: application/json")
    try:
        value = loads(request.body)
    except JsonError as error:
        raise ApiError("bad_json", f"the request body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ApiError("bad_json", "the request body must be a JSON object")
    return value


def _fields(body: dict[str, Any], wanted: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """``body`` checked: only the ``wanted`` fields, each of its type; raises ApiError naming the field."""
    for key, value in body.items():
        if key not in wanted:
            raise ApiError("bad_field", f"unknown field {key[:32]!r} in the request body; the fields here are "
                                        f"{', '.join(wanted) or 'none'}")
        if not isinstance(value, wanted[key]) or isinstance(value, bool) and wanted[key] is not bool:
            raise ApiError("bad_field", f"field {key!r} of the request body has the wrong type")
    return body


async def _create(context: Context, body: dict[str, Any]) -> Response:
    body = _fields(body, {"name": str, "settings": dict, "empty_timeout": (int, float)})
    name = body.get("name")
    if not is_room_name(name):
        raise ApiError("bad_room_name", "field 'name' of the request body must be a room name: 1 to 64 letters, "
                                        "digits, '_', '.' or '-', starting with a letter or digit")
    grace = float(body.get("empty_timeout", EMPTY_TIMEOUT))
    if not 1 <= grace <= MAX_EMPTY_TIMEOUT:
        raise ApiError("bad_field", f"field 'empty_timeout' must be from 1 to {MAX_EMPTY_TIMEOUT:g} seconds")
    config = context.config()
    try:
        room = room_from_settings(body.get("settings", {}), config.room_from_defaults(name), config.auth,
                                  source="request body")
    except ConfigError as error:
        raise ApiError("bad_settings", str(error)) from None
    await context.rooms.create(room, grace)
    settings = {"max_peers": room.max_peers, "access": room.access_mode, "simulcast": room.simulcast,
                "self_unmute": room.self_unmute, "moderator_password": room.moderator_password is not None}
    return answer(201, {"name": name, "settings": settings, "empty_timeout": grace})


async def _participant(context: Context, room: str, peer: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    if len(peer) > MAX_PEER_ID:
        raise ApiError("no_such_peer", f"there is no participant with an id of {len(peer)} characters")
    if action == "mute":
        source = _fields(body, {"source": str}).get("source", "audio")
        if source not in MUTES:
            raise ApiError("bad_field", f"field 'source' must be one of {', '.join(MUTES)}")
        request = parse_request({"action": MUTES[source], "peer": peer})
    else:
        body = _fields(body, {"reason": str, "ban_seconds": int})
        if len(body.get("reason", "")) > MAX_REASON:
            raise ApiError("bad_field", f"field 'reason' must be at most {MAX_REASON} characters")
        request = parse_request({"action": "remove", "peer": peer, **body})
    return await context.rooms.moderate(room, request)
