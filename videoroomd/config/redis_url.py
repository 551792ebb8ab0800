"""The ``[cluster] redis`` URL: checked, and shown without its password (pure code).

The URL carries the Redis password, so no log line, error message or
``check-config`` summary prints it as written: they print :func:`masked`.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

SCHEMES = ("redis", "rediss")  # rediss: TLS
DEFAULT_PORT = 6379
MASK = "***"


def check(text: str) -> str:
    """``text`` if it is a usable Redis URL; raises ValueError saying why not, without the password."""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(f"expected redis://[:PASSWORD@]HOST[:PORT][/DB] or rediss://..., got {masked(text)!r}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"expected a redis:// or rediss:// (TLS) URL, got {masked(text)!r}")
    if not parts.hostname:
        raise ValueError(f"the URL names no host: {masked(text)!r}")
    if port == 0:
        raise ValueError(f"port must be from 1 to 65535, got 0 in {masked(text)!r}")
    database = parts.path.lstrip("/")
    if database and not (database.isdigit() and int(database) < 1 << 16):
        raise ValueError(f"the path is a database number such as /0, got {parts.path!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the URL takes no query or fragment (TLS: rediss://), got {masked(text)!r}")
    return text


def masked(text: str) -> str:
    """``text`` with the password (and a user name's secret part) replaced by ``***``."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return MASK  # unreadable: it may be all password
    if parts.password is None and "@" not in parts.netloc:
        return text
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{MASK}@{host}" if parts.password is not None else f"{MASK}@{host}"
    return SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment).geturl()
