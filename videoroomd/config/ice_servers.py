"""STUN and TURN servers in the config: their URLs (RFC 7064, RFC 7065) and a TURN server's table (pure code)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .schema import IceServerUrl, TurnServer
from .values import Invalid, array_of, describe, is_hostname, string

TURN_SERVER_KEYS = ("urls", "username", "credential", "secret")
_ICE_URL = re.compile(
    r"^(?P<scheme>stuns?|turns?):(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:?\[\]/]+))(?::(?P<port>\d+))?(?:\?(?P<query>.*))?$"
)


def parse_ice_url(text: str, schemes: tuple[str, ...]) -> IceServerUrl:
    """Parse a STUN (RFC 7064) or TURN (RFC 7065) URL; raises ValueError saying why not."""
    match = _ICE_URL.match(text)
    if not match or match.group("scheme") not in schemes:
        example = "stun:stun.example.org:3478" if "stun" in schemes else "turn:turn.example.org:3478?transport=udp"
        raise ValueError(f"{text!r} is not a {'/'.join(schemes)} URL (e.g. \"{example}\")")
    scheme = match.group("scheme")
    host = match.group("v6") or match.group("host")
    if match.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    elif not is_hostname(host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or address")
    secure = scheme.endswith("s")
    port = int(match.group("port")) if match.group("port") else (5349 if secure else 3478)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port must be from 1 to 65535")
    transport = "tcp" if secure else "udp"
    query = match.group("query")
    if query is not None:
        if scheme.startswith("stun"):
            raise ValueError(f"{text!r}: a STUN URL takes no query (RFC 7064)")
        q = re.fullmatch(r"transport=(udp|tcp)", query)
        if not q:
            raise ValueError(f"{text!r}: the only query a TURN URL takes is ?transport=udp or ?transport=tcp (RFC 7065)")
        transport = q.group(1)
    return IceServerUrl(scheme, host, port, transport)


def stun_url(value: Any, path: tuple[str, ...]) -> IceServerUrl:
    try:
        return parse_ice_url(string(value, path), ("stun", "stuns"))
    except ValueError as error:
        raise Invalid(str(error)) from None


def turn_server(value: Any, path: tuple[str, ...]) -> TurnServer:
    if not isinstance(value, dict):
        raise Invalid(f'expected a table {{ urls = "turn:HOST:PORT", username = "...", credential = "..." }}, got {describe(value)}')
    unknown = set(value) - set(TURN_SERVER_KEYS)
    if unknown:
        raise Invalid(f"unknown key {sorted(unknown)[0]!r} in a TURN server (known keys: {', '.join(TURN_SERVER_KEYS)})")
    if "secret" in value:
        if "username" in value or "credential" in value:
            raise Invalid("a TURN server takes either secret (credentials made per join) or username and credential, not both")
        missing = [] if "urls" in value else ["urls"]
    else:
        missing = [k for k in ("urls", "username", "credential") if k not in value]
    if missing:
        raise Invalid(f"a TURN server needs {', '.join(missing)} (or urls and secret)")
    raw_urls = value["urls"]
    if isinstance(raw_urls, str):
        raw_urls = [raw_urls]
    if not isinstance(raw_urls, list) or not raw_urls or not all(isinstance(u, str) for u in raw_urls):
        raise Invalid("urls must be a TURN URL or a non-empty array of them")
    try:
        urls = tuple(parse_ice_url(u, ("turn", "turns")) for u in raw_urls)
    except ValueError as error:
        raise Invalid(str(error)) from None
    if "secret" in value:
        secret = value["secret"]
        if not isinstance(secret, str) or not secret:
            raise Invalid("secret must be a non-empty string")
        return TurnServer(urls, "", "", secret)
    username = value["username"]
    credential = value["credential"]
    if not isinstance(username, str) or not username:
        raise Invalid("username must be a non-empty string")
    if not isinstance(credential, str) or not credential:
        raise Invalid("credential must be a non-empty string")
    return TurnServer(urls, username, credential)


turn_servers = array_of(turn_server, "an array of tables")
