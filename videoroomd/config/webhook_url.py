"""The ``[webhooks] urls``: checked, and shown without what may be secret in them (pure code).

A webhook URL often carries a secret of the receiving app in its path or
query (a token a chat service hands out, say), so no log line, metric or
``check-config`` summary prints it as written: they print :func:`shown`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")
MAX_URL = 2048  # characters: every receiver takes that much in a request line
MAX_URLS = 16


def check(text: str) -> str:
    """``text`` if it is a URL the daemon can POST to; raises ValueError saying why not (shown masked)."""
    if len(text) > MAX_URL:
        raise ValueError(f"expected a URL of at most {MAX_URL} characters, got {len(text)}")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"a URL has no spaces or control characters: {shown(text)!r}")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(f"expected http://HOST[:PORT]/PATH or https://..., got {shown(text)!r}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"expected an http:// or https:// URL, got {shown(text)!r}")
    if not parts.hostname:
        raise ValueError(f"the URL names no host: {shown(text)!r}")
    if "@" in parts.netloc:
        raise ValueError(f"put no user name or password in the URL (requests are signed with [webhooks] key): "
                         f"{shown(text)!r}")
    if port == 0:
        raise ValueError(f"port must be from 1 to 65535, got 0 in {shown(text)!r}")
    if parts.fragment or text.endswith("#"):
        raise ValueError(f"the URL takes no #fragment: {shown(text)!r}")
    return text


def shown(text: str) -> str:
    """``text`` as logs and summaries show it: scheme, host and port, the path and query left out."""
    try:
        parts = urlsplit(text)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<unreadable URL>"
    host = f"[{host}]" if ":" in host else host
    tail = "/..." if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{tail}"
