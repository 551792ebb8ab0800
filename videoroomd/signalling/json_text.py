"""JSON in WebSocket text frames: the first check both signalling protocols make (pure)."""

from __future__ import annotations

from typing import Any

from .. import json_limits


def load(text: str | bytes, error: type[Exception], send_instead: str) -> Any:
    """The JSON value of one text frame.

    Raises ``error`` saying what is wrong: a binary frame (``send_instead`` tells the
    client what to send), or text that is not JSON we accept (too deep, a number too large...; with the column).
    """
    if isinstance(text, bytes):
        raise error(f"binary frames are not accepted; {send_instead}")
    try:
        return json_limits.loads(text)
    except json_limits.JsonError as problem:
        raise error(f"not JSON: {problem}") from None
