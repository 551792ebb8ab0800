"""The daemon's own answers on the port: ``/healthz``, ``/metrics``, ``/admin/rooms``, and the 426 of
a plain request to a WebSocket path. Their paths are given in :mod:`.routes`."""

from __future__ import annotations

import hmac
import json

from ..context import Context
from ..metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .request import Request, Response


async def healthz(context: Context, request: Request) -> Response:
    """200 "ok" while serving, 503 once a stop has begun (load balancers stop sending people here);
    200 "degraded: WHY" while serving with a part missing (a cluster node without Redis: its calls go on)."""
    if context.draining():
        return Response.text(503, "draining")
    problem = context.degraded()
    if problem is not None:
        return Response.text(200, f"degraded: {problem}")
    return Response.text(200, "ok")


async def metrics(context: Context, request: Request) -> Response:
    return Response(200, context.metrics.render(), METRICS_CONTENT_TYPE)


def _admin_allowed(context: Context, request: Request) -> bool:
    token = context.config().server.admin_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        # The scheme is case-insensitive (RFC 7235): "bearer" and "BEARER" are "Bearer".
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return request.from_loopback


async def admin_rooms(context: Context, request: Request) -> Response:
    """Every room and media worker, for the operator: this machine only, or with ``[server] admin_token``."""
    if not _admin_allowed(context, request):
        return Response.text(403, "the admin view is open only to this machine, asked for by a loopback name "
                                  "(localhost, 127.0.0.1, [::1]) and not through a proxy; or set [server] admin_token")
    body = {
        "draining": context.draining(),
        "config": context.config().source,
        "rooms": context.rooms.snapshot(),
        "media_workers": context.media_snapshot(),
    }
    return Response(200, json.dumps(body, indent=2).encode() + b"\n", "application/json")


async def websocket_only(request: Request) -> Response:
    return Response.text(426, "this address takes WebSocket connections only")
