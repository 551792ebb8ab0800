"""``/api/check``: the connectivity check page's (``/check``) short-lived TURN credentials (pure code).

The page tries each way a call can carry its media, with a peer connection
of its own: straight to the media ports, then through the built-in TURN
server over each transport it listens on, with these credentials (its
offers go to ``POST /api/check/media``, :mod:`videoroomd.engine.media_check`).
The credentials are made for one check (user ``check-<random>``) and expire
after CHECK_LIFETIME; a client address gets at most CHECK_BURST of them at
once, then one every 1/CHECK_RATE seconds. The ``stun`` entry (the TURN
server's UDP port) is for other clients of this API; the page no longer uses it."""

from __future__ import annotations

import secrets

from ..token_buckets import TokenBuckets
from ..turn.clients import CHECK_USER, IssuedServer
from ..turn.credentials import rest_password, rest_username

CHECK_LIFETIME = 300.0  # seconds a check's TURN credentials stay valid
CHECK_RATE = 0.2        # checks per second per client address, after the burst
CHECK_BURST = 5


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def check_servers(builtin: tuple[IssuedServer, ...], now: float) -> dict:
    """The JSON the check page gets: a STUN URL for the UDP test (or None) and one TURN
    entry per transport of the built-in server, credentials made at ``now`` (Unix time)."""
    username = rest_username(f"{CHECK_USER}{secrets.token_hex(6)}", now, CHECK_LIFETIME)
    turn, stun = [], None
    for server in builtin:
        if server.transport == "tls":
            url = f"turns:{_host(server.host)}:{server.port}?transport=tcp"
        else:
            url = f"turn:{_host(server.host)}:{server.port}?transport={server.transport}"
        if server.transport == "udp":
            stun = f"stun:{_host(server.host)}:{server.port}"
        turn.append({"transport": server.transport, "urls": url, "username": username,
                     "credential": rest_password(server.secret, username)})
    return {"stun": stun, "turn": turn}


class CheckLimiter:
    """At most CHECK_BURST checks at once per client address, then CHECK_RATE per second."""

    def __init__(self) -> None:
        self.buckets = TokenBuckets(CHECK_RATE, CHECK_BURST)

    def allow(self, address: str, now: float) -> float:
        """0 when ``address`` may check now (a token is spent), else the seconds until it may."""
        if self.buckets.take(address, now):
            return 0.0
        return max(self.buckets.wait(address, now), 0.1)
