"""A hint for a TOML syntax error, from tomllib's message and the line it points at (pure).

tomllib says what it expected ("Invalid value", "Expected '=' after a key"); an operator editing
the file by hand most often left the quotes off a text value, wrote a key without ``=``, or left a
bracket or a quote open. The hint says which, with the line as it should look where it can."""

from __future__ import annotations

import re

_ASSIGN = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.\-\"']+)\s*=\s*(?P<value>.*?)\s*$")
_BARE_WORDS = {"true", "false", "inf", "nan"}


def _quoted(line: str) -> str | None:
    """The line with its value in quotes, when the value is bare text (not a number, a boolean, a list)."""
    assign = _ASSIGN.match(line.split("#", 1)[0])
    if not assign:
        return None
    value = assign.group("value")
    if not value or value[0] in "\"'[{" or value in _BARE_WORDS or re.fullmatch(r"[+-]?[0-9_.eE+-]+", value):
        return None
    return f'{assign.group("key")} = "{value}"'


def syntax_hint(what: str, line: str | None) -> str | None:
    """A hint for tomllib's complaint ``what`` about ``line`` (its text, None when unknown), or None."""
    if what.startswith(("Invalid value", "Expected newline or end of document after a statement")):
        fixed = _quoted(line or "")
        if fixed:
            return f"text values need quotes: {fixed}"
        return "a value is a quoted text, a number, true or false, or a [list]"
    if what.startswith("Expected '=' after a key"):
        return "each setting is written key = value"
    if what.startswith("Expected ']' at the end of a table declaration"):
        return "a table header is a name in brackets: [server]"
    if what.startswith("Unterminated string"):
        return "a quote is missing at the end of a text value"
    if what.startswith("Unclosed array"):
        return "a list is missing its closing ]"
    if what.startswith(("Cannot overwrite a value", "Cannot declare")):
        return "a key or table is given twice"
    return None
