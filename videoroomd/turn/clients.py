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
CHECK_USER = "check-"  # how the users of the connectivity check's credentials begin (never a peer id)


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
    """What the engine asks for each join: the built-in server's endpoints and how long credentials last.

    It also remembers who holds credentials now: the peer each was made
    for and its room, from the first :meth:`for_peer` until :meth:`revoke`
    (the peer left its call). The built-in server allocates only for those
    (:meth:`may_allocate`), and ends a revoked peer's allocations (``on_revoke``).
    """

    def __init__(self, builtin: tuple[IssuedServer, ...] = (), lifetime: float = LIFETIME,
                 clock: Callable[[], float] = time.time):
        self.builtin = builtin
        self.lifetime = lifetime
        self.clock = clock
        self._rooms: dict[str, str] = {}  # peer id -> the room it was issued credentials in
        self.on_revoke: list[Callable[[str], None]] = []

    def for_peer(self, room: RoomConfig, peer_id: str) -> list[dict]:
        """``offerData.integratedTurnServers`` for ``peer_id`` in ``room``, with credentials made now."""
        self._rooms[peer_id] = room.name
        return client_turn_servers(room, peer_id, self.clock(), builtin=self.builtin, lifetime=self.lifetime)

    def hold_check(self, user: str, room: str) -> None:
        """Connectivity check ``user`` (``check-...``) may relay to the media sockets held for it in
        ``room`` (the check's own), until :meth:`revoke` ends that and its allocations."""
        if user.startswith(CHECK_USER):
            self._rooms[user] = room

    def room_of(self, peer_id: str) -> str | None:
        """The room ``peer_id`` was issued credentials in, while it is in its call; else None."""
        return self._rooms.get(peer_id)

    def may_allocate(self, user: str) -> bool:
        """Whether credentials for ``user`` may allocate: a peer in its call, or a connectivity
        check (whose allocations relay only to its own check's media sockets, :meth:`hold_check`)."""
        return user in self._rooms or user.startswith(CHECK_USER)

    def revoke(self, peer_id: str) -> None:
        """``peer_id`` left its call: its credentials allocate nothing from now on, and what they
        allocated ends (each ``on_revoke`` is told); revoking twice, or one never issued, is fine."""
        if self._rooms.pop(peer_id, None) is not None:
            for revoked in self.on_revoke:
                revoked(peer_id)
