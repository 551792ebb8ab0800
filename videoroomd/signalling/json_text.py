"""JSON in WebSocket text frames: the first check both signalling protocols make (pure)."""

from __future__ import annotations

import json
from typing import Any


def load(text: str | bytes, error: type[Exception], send_instead: str) -> Any:
    """The JSON value of one text frame.

    Raises ``error`` saying what is wrong: a binary frame (``send_instead`` tells the
    client what to send), or text that is not JSON (with the column).
    """
    if isinstance(text, bytes):
        raise error(f"binary frames are not accepted; {send_instead}")
    try:
        return json.loads(text)
    except ValueError as problem:
        raise error(f"not JSON: {problem.msg} at column {problem.colno}") from None
