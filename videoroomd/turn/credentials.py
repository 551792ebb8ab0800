"""TURN credentials that expire: the TURN REST API scheme, and the long-term key (pure code).

A join gets ``username = "<expiry>:<peer id>"`` and ``password =
base64(HMAC-SHA1(secret, username))``. A TURN server that knows the secret
(ours, or an operator's coturn with ``use-auth-secret``) recomputes the
password from the username alone, and refuses it once ``expiry`` (Unix
seconds) has passed. MESSAGE-INTEGRITY is keyed with
``MD5(username ":" realm ":" password)`` (RFC 8489 §9.2.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

CLOCK_SLACK = 60.0  # seconds a username's expiry may lie beyond the lifetime (clocks of other issuers)
MAX_USERNAME = 513  # bytes (RFC 8489 §14.3)
_REST_USERNAME = re.compile(r"\A(?P<expiry>\d{1,12})(?::(?P<user>.{0,500}))?\Z", re.DOTALL)


def rest_username(peer_id: str, now: float, lifetime: float) -> str:
    """The username of a credential for ``peer_id`` valid ``lifetime`` seconds from ``now`` (Unix time)."""
    return f"{int(now + lifetime)}:{peer_id}"


def rest_password(secret: str, username: str) -> str:
    """The password the TURN REST API scheme gives ``username`` under ``secret``."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """The MESSAGE-INTEGRITY key of long-term credentials (RFC 8489 §9.2.2, MD5)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def expiry_of(username: str) -> int | None:
    """The Unix time a REST-API username stops being valid, or None if it is not one."""
    if len(username.encode()) > MAX_USERNAME:
        return None
    match = _REST_USERNAME.match(username)
    return int(match.group("expiry")) if match else None


def user_of(username: str) -> str:
    """Who a username stands for: the peer of a REST-API username (whatever its expiry), else the username."""
    return username.split(":", 1)[1] if expiry_of(username) is not None and ":" in username else username


def key_for(username: str, realm: str, secret: str, now: float, max_lifetime: float | None = None) -> bytes | None:
    """The key to check a request by ``username`` with, or None: not a REST-API username, expired,
    or (with ``max_lifetime``) valid for longer than credentials are ever issued for."""
    expiry = expiry_of(username)
    if expiry is None or expiry <= now:
        return None
    if max_lifetime is not None and expiry > now + max_lifetime + CLOCK_SLACK:
        return None
    return long_term_key(username, realm, rest_password(secret, username))
