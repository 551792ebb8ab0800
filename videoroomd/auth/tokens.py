"""Access tokens: JWTs signed with HS256 by a key of ``[auth] keys``, read and checked here (pure).

An app server mints a token for one person and one room; the token says who
the person is (``sub``), the name to show (``name``), which room (``room``),
until when (``exp``) and from when (``nbf``) it is good, which key signed it
(``iss``, the key's name, so that keys can be rotated), and what the person
may do (``grants``). Only HS256 is accepted: a token naming any other
algorithm (``none``, RS256 with the shared secret passed off as a public
key, ...) is refused before its signature is looked at.

Each refusal is a :class:`TokenRefused` with a code and a reason a person
can read; neither ever holds the token or a secret.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import jwt

ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 4096       # a token is a few hundred bytes; more is an attack or a mistake
MAX_IDENTITY = 128           # characters of ``sub``
MAX_NAME = 256               # characters of ``name`` before the room shortens it for display
SOURCES = ("audio", "video", "screen")  # what the publish grant names


class TokenRefused(Exception):
    """A token that does not open the room; ``code`` for programs, ``reason`` for people."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code       # token_malformed, token_too_large, token_algorithm, token_unknown_key,
        self.reason = reason   # token_bad_signature, token_expired, token_not_yet_valid, token_wrong_room


@dataclass(frozen=True)
class Grants:
    """What a participant may do. The defaults are those of someone who joined without a token."""

    join: bool = True
    publish: frozenset[str] = frozenset(SOURCES)   # a subset of SOURCES
    subscribe: bool = True
    chat: bool = True
    moderate: bool = False
    record: bool = False
    admin: bool = False

    def claims(self) -> dict[str, Any]:
        """The grants as they are written in a token."""
        return {"join": self.join, "publish": [s for s in SOURCES if s in self.publish], "subscribe": self.subscribe,
                "chat": self.chat, "moderate": self.moderate, "record": self.record, "admin": self.admin}


EVERYONE = Grants()  # a participant admitted by a password, or to an open room


@dataclass(frozen=True)
class AccessToken:
    """A token that passed every check: who it admits, to which room, with what rights."""

    identity: str
    name: str | None
    room: str
    grants: Grants
    key: str
    expires: float
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The token as it came, for a node that checks it again (the room's node, when the join reached
    # another): never shown or logged.
    raw: str = field(default="", repr=False, compare=False)


def mint(key: str, secret: str, *, room: str, identity: str, now: float, ttl: float, name: str | None = None,
         grants: Grants = EVERYONE, not_before: float | None = None) -> str:
    """A token for ``identity`` in ``room`` signed with ``secret`` (the key called ``key``), good from
    ``not_before`` (default ``now``) for ``ttl`` seconds after ``now``."""
    claims: dict[str, Any] = {"iss": key, "sub": identity, "room": room, "iat": int(now),
                              "nbf": int(now if not_before is None else not_before), "exp": int(now + ttl),
                              "grants": grants.claims()}
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: Any, keys: Mapping[str, str], *, room: str, now: float) -> AccessToken:
    """The access ``token`` gives to ``room`` at Unix time ``now``, checked against ``keys``
    (name → secret). Raises TokenRefused with the first thing wrong with it."""
    if not isinstance(token, str) or not token:
        raise TokenRefused("token_malformed", "the access token must be a non-empty string")
    if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
        raise TokenRefused("token_too_large", f"the access token is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefused("token_malformed", "the access token is not a JWT (header.claims.signature)") from None
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        raise TokenRefused("token_algorithm",
                           f"the access token is signed with {str(algorithm)[:16]!r}; only {ALGORITHM} is accepted")
    key = unverified.get("iss")
    secret = keys.get(key) if isinstance(key, str) else None
    if secret is None:
        shown = repr(key[:64]) if isinstance(key, str) else "no key (iss)"
        raise TokenRefused("token_unknown_key", f"the access token names {shown}, which is not a key of this server "
                                                "(it may have been removed)")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                     "verify_aud": False, "verify_iss": False})
    except jwt.InvalidSignatureError:
        raise TokenRefused("token_bad_signature", f"the access token's signature does not match key {key!r}") from None
    except jwt.PyJWTError:
        raise TokenRefused("token_malformed", "the access token's claims cannot be read") from None
    return replace(_checked(claims, key, room=room, now=now), raw=token)


def _checked(claims: dict[str, Any], key: str, *, room: str, now: float) -> AccessToken:
    """The signed ``claims`` as an AccessToken for ``room`` at ``now``; raises TokenRefused."""
    expires, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not _is_time(expires):
        raise TokenRefused("token_malformed", "the access token has no expiry (exp, in seconds since 1970)")
    if not _is_time(not_before):
        raise TokenRefused("token_malformed", "the access token's nbf is not a time (seconds since 1970)")
    if now >= expires:
        raise TokenRefused("token_expired", f"the access token expired {max(1, int(now - expires))} s ago")
    if now < not_before:
        wait = max(1, math.ceil(not_before - now))
        raise TokenRefused("token_not_yet_valid", f"the access token is not valid for another {wait} s")
    if claims.get("room") != room:
        named = claims.get("room")
        shown = repr(named[:64]) if isinstance(named, str) else "no room"
        raise TokenRefused("token_wrong_room", f"the access token is for {shown}, not for room '{room}'")
    identity, name = claims.get("sub"), claims.get("name")
    if not isinstance(identity, str) or not 0 < len(identity) <= MAX_IDENTITY:
        raise TokenRefused("token_malformed",
                           f"the access token's identity (sub) must be 1 to {MAX_IDENTITY} characters")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        raise TokenRefused("token_malformed",
                           f"the access token's name must be a string of at most {MAX_NAME} characters")
    return AccessToken(identity, name or None, room, grants_from(claims.get("grants")), key, float(expires), claims)


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def grants_from(value: Any) -> Grants:
    """The grants a token's ``grants`` claim gives; a grant it leaves out keeps its default,
    a grant of the wrong type raises TokenRefused."""
    if value is None:
        return EVERYONE
    if not isinstance(value, dict):
        raise TokenRefused("token_malformed", "the access token's grants must be an object")
    found: dict[str, Any] = {}
    for name in ("join", "subscribe", "chat", "moderate", "record", "admin"):
        if name in value:
            if not isinstance(value[name], bool):
                raise TokenRefused("token_malformed", f"the access token's grant {name!r} must be true or false")
            found[name] = value[name]
    if "publish" in value:
        publish = value["publish"]
        if isinstance(publish, bool):
            publish = list(SOURCES) if publish else []
        if not isinstance(publish, list) or not all(isinstance(s, str) and s in SOURCES for s in publish):
            raise TokenRefused("token_malformed", f"the access token's grant 'publish' must be true, false or a list "
                                                  f"of {', '.join(SOURCES)}")
        found["publish"] = frozenset(publish)
    return Grants(**found)


def parse_ttl(text: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"1h"`` or ``"2d"`` as seconds; raises ValueError."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: a number with s, m, h or d, like 1h")
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds <= 0:
        raise ValueError("a token's lifetime must be more than 0 s")
    return seconds
