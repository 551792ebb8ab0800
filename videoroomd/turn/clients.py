"""``offerData.integratedTurnServers`` for one join: fixed credentials, or credentials made for it (pure code).

The official client reads ``{serverAddr, serverPort, transport, username,
password}`` per entry and uses only relayed candidates. A server that
shares a secret with us (the built-in one, or an operator's coturn with
``use-auth-secret``) gets, per join, a username ``<expiry>:<peer id>`` and
the password derived from it, so a leaked entry stops working at expiry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..config.schema import RoomConfig, TurnConfig
from .credentials import rest_password, rest_username

LIFETIME = TurnConfig().credential_lifetime  # the schema's [turn] credential_lifetime


@dataclass(frozen=True)
class IssuedServer:
    """A TURN endpoint whose credentials are made per join from ``secret``."""

    host: str
    port: int
    transport: str  # udp, tcp or tls
    secret: str = field(repr=False)


def client_turn_servers(
    room: RoomConfig, peer_id: str, now: float, *, builtin: tuple[IssuedServer, ...] = (), lifetime: float = LIFETIME
) -> list[dict]:
    """The entries for ``peer_id`` joining ``room`` at ``now`` (Unix time); made credentials last ``lifetime`` seconds."""
    issued = list(builtin)
    entries = []
    for server in room.turn_servers:
        for url in server.urls:
            transport = "tls" if url.scheme == "turns" else url.transport
            if server.secret is not None:
                issued.append(IssuedServer(url.host, url.port, transport, server.secret))
            else:
                entries.append({"serverAddr": url.host, "serverPort": url.port, "transport": transport,
                                "username": server.username, "password": server.credential})
    username = rest_username(peer_id, now, lifetime)
    made = [{"serverAddr": s.host, "serverPort": s.port, "transport": s.transport,
             "username": username, "password": rest_password(s.secret, username)} for s in issued]
    return made + entries


class TurnCredentials:
    """What the engine asks for each join: the built-in server's endpoints and how long credentials last."""

    def __init__(self, builtin: tuple[IssuedServer, ...] = (), lifetime: float = LIFETIME,
                 clock: Callable[[], float] = time.time):
        self.builtin = builtin
        self.lifetime = lifetime
        self.clock = clock

    def for_peer(self, room: RoomConfig, peer_id: str) -> list[dict]:
        """``offerData.integratedTurnServers`` for ``peer_id`` in ``room``, with credentials made now."""
        return client_turn_servers(room, peer_id, self.clock(), builtin=self.builtin, lifetime=self.lifetime)
