"""JSON from clients, parsed with limits, and JSON to clients (pure code).

Every JSON value a client sends (Phoenix frames, relay messages, the relay's
credentials cookie, media events inside frames) goes through :func:`loads`.
orjson refuses what the standard library lets through and later chokes on:
numbers too large for a double, lone surrogates, NaN; on top of that a value
may nest at most ``MAX_DEPTH`` levels, so nothing a client sent can make
encoding it again (for the other participants) recurse out of the stack.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 32  # arrays and objects inside each other; the clients we serve use 6


class JsonError(ValueError):
    """Text that is not JSON we accept; the message says what and where."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of ``text``; raises JsonError saying what is wrong and at which column."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise JsonError(f"{error.msg} at column {error.colno}") from None
    depth = nesting(value)
    if depth > max_depth:
        raise JsonError(f"nested {depth} levels deep; at most {max_depth} are accepted")
    return value


def nesting(value: Any) -> int:
    """How many arrays and objects deep ``value`` goes (0 for a scalar); iterative, never recurses."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` (which came from :func:`loads` or from the daemon itself)."""
    return orjson.dumps(value).decode()
