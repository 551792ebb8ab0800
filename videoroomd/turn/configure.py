"""Making the built-in TURN server from the daemon's configuration."""

from __future__ import annotations

import ipaddress
import ssl
from typing import Callable

from ..config.schema import Config
from ..http.hosts import split_host
from .clients import IssuedServer, TurnCredentials
from .peers import MediaAddresses
from .server import AllowedPeer, TurnService

WILDCARDS = ("0.0.0.0", "::")


def relay_host(config: Config, media_hosts: frozenset[str]) -> str:
    """Where relay sockets are bound: the first ``[ice] address``, else the TURN listen address, else a host address."""
    if config.ice.addresses:
        return config.ice.addresses[0]
    if config.turn.host not in WILDCARDS:
        return config.turn.host
    v4 = sorted(h for h in media_hosts if ipaddress.ip_address(h).version == 4)
    return (v4 or sorted(media_hosts) or ["127.0.0.1"])[0]


def turn_service(config: Config, allowed_peer: AllowedPeer, media_hosts: frozenset[str]) -> TurnService:
    """The service ``[turn]`` describes (TLS with ``[server] tls_cert``/``tls_key`` when ``tls_listen`` is set)."""
    context = None
    if config.turn.tls_port is not None and config.server.tls_cert is not None and config.server.tls_key is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    return TurnService(config.turn, allowed_peer, relay_host=relay_host(config, media_hosts), ssl_context=context)


def call_scope(credentials: TurnCredentials, media: MediaAddresses) -> Callable[[str, tuple[str, int]], bool]:
    """Where a user's allocations may relay: the media sockets of the connection its credentials
    were issued for, in that room's call (none for a user in no call, as a connectivity check's)."""
    def scope(user: str, peer: tuple[str, int]) -> bool:
        return media.serves(peer[0], peer[1], credentials.room_of(user), user)

    return scope


def issued_servers(service: TurnService, config: Config) -> tuple[IssuedServer, ...]:
    """The built-in server's entries for clients: on ``[ice] announced_ip``, else where it listens or relays."""
    public = config.ice.announced_ip or (config.turn.host if config.turn.host not in WILDCARDS else service.relay_host)
    # TLS is checked against the certificate's name: the first configured host name, when there is one.
    named = split_host(config.server.hostnames[0]) if config.server.hostnames else None
    tls_host = named[0].strip("[]") if named else public
    servers = []
    for transport in ("udp", "tcp", "tls"):
        address = service.addresses.get(transport)
        if address is not None:
            servers.append(IssuedServer(tls_host if transport == "tls" else public, address[1], transport, service.secret))
    return tuple(servers)
