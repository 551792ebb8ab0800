"""What can still be read of a config file that has an error (pure but for reading the file).

An operator whose edit broke the file needs `videoroomd logs` and `videoroomd rooms --live` most
(the daemon runs on with its last good config). Those go on with a warning, from the few plain
values they need: ``[log] file``, ``[server] listen``, ``admin_token``, ``tls_cert``. A file that
is valid TOML gives them as written; one with a syntax error is read line by line for
``key = "text"`` under its table's header."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$")
_TEXT = re.compile(r"""^\s*([A-Za-z0-9_\-]+)\s*=\s*(?:"([^"\\]*)"|'([^']*)')\s*(#.*)?$""")
WANTED = {("log", "file"), ("server", "listen"), ("server", "admin_token"), ("server", "tls_cert")}


def _by_lines(text: str) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    table = ""
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            table = header.group(1)
            continue
        value = _TEXT.match(line)
        if value and (table, value.group(1)) in WANTED:
            found.setdefault((table, value.group(1)), value.group(2) if value.group(2) is not None else value.group(3))
    return found


def salvage(path: Path) -> dict[tuple[str, str], str]:
    """The WANTED values ``path`` gives as text, by (table, key); {} when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _by_lines(text)
    found = {}
    for table, key in WANTED:
        section = document.get(table)
        value = section.get(key) if isinstance(section, dict) else None
        if isinstance(value, str):
            found[(table, key)] = value
    return found
