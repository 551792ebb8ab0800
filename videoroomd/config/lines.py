"""Find the line of a dotted key in TOML text, so errors can point at it.

``tomllib`` keeps no positions, so this scans the text the way a reader
would: table headers (``[rooms.lobby]``) set the current prefix, and
``key = value`` lines (also dotted and quoted keys) name a key under it.
It is a locator for error messages, not a parser: when it cannot tell,
it answers ``None`` and the message simply has no line.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ARRAY_HEADER = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")
_PART = re.compile(r"[A-Za-z0-9_-]+|\"([^\"]*)\"|'([^']*)'")


def _split_key(text: str) -> tuple[str, ...]:
    parts = []
    for match in _PART.finditer(text):
        if match.group(1) is not None:
            parts.append(match.group(1))
        elif match.group(2) is not None:
            parts.append(match.group(2))
        else:
            parts.append(match.group(0))
    return tuple(parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map every table header and assigned key in ``text`` to its 1-based line.

    The first occurrence wins. Lines inside multi-line strings or arrays may be
    misread as keys; that only costs precision of a message, never correctness.
    """
    found: dict[tuple[str, ...], int] = {}
    prefix: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _ARRAY_HEADER.match(line) or _HEADER.match(line)
        if header:
            prefix = _split_key(header.group(1))
            for end in range(1, len(prefix) + 1):  # [a.b] also places the table a
                found.setdefault(prefix[:end], number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            found.setdefault(prefix + _split_key(assign.group(1)), number)
    return found


def line_of(lines: dict[tuple[str, ...], int], key: tuple[str, ...]) -> int | None:
    """The line of ``key``, else of its nearest enclosing key that has one."""
    for end in range(len(key), 0, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None
