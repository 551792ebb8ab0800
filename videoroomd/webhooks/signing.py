"""A webhook's body and its signature, and the receiver's check of both (pure code).

The body is compact JSON ``{"id", "event", "timestamp", "room", ...}``; the
header ``X-Videoroomd-Signature: sha256=<hex>`` is the HMAC-SHA256 of the
body's bytes under ``[webhooks] key``. The timestamp (Unix seconds, when the
event happened) is inside the signed body, so a receiver can refuse old
bodies replayed at it, and the id lets it ignore a retry it already took.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "X-Videoroomd-Signature"
EVENT_HEADER = "X-Videoroomd-Event"
ID_HEADER = "X-Videoroomd-Id"
SCHEME = "sha256="


def body(event: str, room: str, fields: dict[str, Any], *, event_id: str, timestamp: int) -> bytes:
    """The JSON a webhook carries: id, event, timestamp and room first, then the event's ``fields``."""
    document = {"id": event_id, "event": event, "timestamp": timestamp, "room": room}
    document.update((name, value) for name, value in fields.items() if name not in document)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def signature(key: str, payload: bytes) -> str:
    """The signature header's value for ``payload``: ``sha256=`` and the hex HMAC-SHA256 under ``key``."""
    return SCHEME + hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def verify(key: str, payload: bytes, header: str | None, *, now: float, tolerance: float = 300.0) -> dict[str, Any]:
    """What a receiver does: check the signature, then the timestamp within ``tolerance`` seconds of ``now``.

    Returns the event; raises ValueError saying which check failed.
    """
    if header is None or not hmac.compare_digest(signature(key, payload), header.strip()):
        raise ValueError("bad signature")
    event = json.loads(payload)
    if not isinstance(event.get("timestamp"), int) or abs(now - event["timestamp"]) > tolerance:
        raise ValueError("timestamp too old or too far ahead: a replay, or a clock that is off")
    return event
