"""Long-term credential checks of TURN requests (RFC 8489 §9.2) with REST-API usernames (pure code).

Nonces are stateless: the issue time and an HMAC of it and of the client's
address under a key of this process, so that nothing is stored per client, a
nonce from before a restart (or older than NONCE_LIFETIME) is stale, and a
nonce is good only from the address it was sent to: a request signed with
a forged source address is refused, never answered as authenticated.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Callable

from aioice import stun

from .credentials import key_for
from .messages import error

NONCE_LIFETIME = 3600  # seconds a nonce is good for; then 438 and the client retries with a new one


@dataclass
class Refusal:
    """An answer to send instead of serving the request; ``bad_credentials`` when they were given but wrong."""

    message: stun.Message
    bad_credentials: bool = False


class Authenticator:
    def __init__(self, realm: str, secret: str, clock: Callable[[], float], max_lifetime: float | None = None):
        self.realm = realm
        self._secret = secret
        self.clock = clock  # Unix time: REST-API usernames carry a Unix expiry
        self.max_lifetime = max_lifetime  # the longest a username may still be valid for; None: any
        self._nonce_key = os.urandom(16)

    def nonce(self, source: str = "") -> bytes:
        """A fresh nonce for the client at IP address ``source``."""
        stamp = f"{int(self.clock()):x}"
        return f"{stamp}-{self._tag(stamp, source)}".encode()

    def _tag(self, stamp: str, source: str) -> str:
        return hmac.new(self._nonce_key, f"{stamp} {source}".encode(), hashlib.sha256).hexdigest()[:16]

    def nonce_valid(self, nonce: bytes, source: str = "") -> bool:
        try:
            stamp, tag = nonce.decode("ascii").split("-", 1)
            issued = int(stamp, 16)
        except (UnicodeDecodeError, ValueError):
            return False
        return hmac.compare_digest(tag, self._tag(stamp, source)) and 0 <= self.clock() - issued < NONCE_LIFETIME

    def challenge(self, message: stun.Message, code: int, reason: str, source: str = "") -> stun.Message:
        """An error response carrying REALM and a fresh NONCE for ``source``, to retry with."""
        return error(message, code, reason, {"REALM": self.realm, "NONCE": self.nonce(source)})

    def check(self, message: stun.Message, source: str = "") -> tuple[str, bytes] | Refusal:
        """``(username, key)`` of a request from IP address ``source`` signed with valid
        credentials, else the :class:`Refusal` to answer."""
        attributes = message.attributes
        if "MESSAGE-INTEGRITY" not in attributes:
            return Refusal(self.challenge(message, 401, "credentials needed", source))
        username, realm, nonce = attributes.get("USERNAME"), attributes.get("REALM"), attributes.get("NONCE")
        if username is None or realm is None or nonce is None:
            return Refusal(error(message, 400, "MESSAGE-INTEGRITY needs USERNAME, REALM and NONCE"))
        if not self.nonce_valid(nonce, source):
            return Refusal(self.challenge(message, 438, "stale nonce: use the new one", source))
        key = key_for(username, realm, self._secret, self.clock(), self.max_lifetime) if realm == self.realm else None
        if key is None:
            return Refusal(self.challenge(message, 401, "unknown, forged or expired credentials", source),
                           bad_credentials=True)
        if not message.check_message_integrity(key):
            return Refusal(self.challenge(message, 401, "MESSAGE-INTEGRITY does not match", source), bad_credentials=True)
        return username, key
