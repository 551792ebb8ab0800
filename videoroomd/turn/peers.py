"""Where relayed data may go: the daemon's own media sockets, each only for its own call (pure code).

The TURN server asks ``allowed_peer(ip, port)`` before it grants a
permission or a channel and before every datagram it relays, both ways.
:class:`MediaAddresses` answers it: the address must be one of the
daemon's media addresses, and the port one of its media sockets. The
media side registers each socket it opens (``add``) and closes
(``remove``), with the media worker it is open in and the room and
endpoint whose connection it belongs to; a socket bound to the wildcard
address stands for every media address of its family. :meth:`serves`
answers the narrower question a credential asks: whether a socket is one
of the given room's and endpoint's.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Iterable

from aioice.ice import get_host_addresses

WILDCARDS = {4: "0.0.0.0", 6: "::"}


def _normal(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


class MediaAddresses:
    """The daemon's media addresses and the media sockets open on them now."""

    def __init__(self, hosts: Iterable[str]):
        self.hosts = frozenset(h for h in (_normal(ip) for ip in hosts) if h is not None)
        self._ports: Counter[tuple[str, int]] = Counter()
        self._owners: dict[tuple[str, int], str] = {}  # socket -> the media worker it is open in
        self._holders: dict[tuple[str, int], tuple[str, str]] = {}  # socket -> (room, endpoint) it serves

    @classmethod
    def for_ice(cls, addresses: Iterable[str]) -> "MediaAddresses":
        """The configured ``[ice] addresses``, or when none are, the host's own addresses (never another host's)."""
        addresses = tuple(addresses)
        return cls(addresses or get_host_addresses(use_ipv4=True, use_ipv6=True))

    def add(self, ip: str, port: int, owner: str | None = None, holder: tuple[str, str] | None = None) -> None:
        """A media socket is open on ``(ip, port)`` (``0.0.0.0`` / ``::``: on every media address),
        in the media worker called ``owner`` if given, for the connection of ``holder``
        (room, endpoint) if given."""
        normal = _normal(ip)
        if normal is not None:
            self._ports[(normal, port)] += 1
            if owner is not None:
                self._owners[(normal, port)] = owner
            if holder is not None:
                self._holders[(normal, port)] = holder

    def remove(self, ip: str, port: int) -> None:
        """The socket ``add`` announced is closed; removing one never added is fine."""
        key = (_normal(ip) or ip, port)
        if self._ports[key] > 1:
            self._ports[key] -= 1
        else:
            self._ports.pop(key, None)
            self._owners.pop(key, None)
            self._holders.pop(key, None)

    def is_media_host(self, ip: str) -> bool:
        return _normal(ip) in self.hosts

    def contains(self, ip: str, port: int) -> bool:
        """Whether ``(ip, port)`` is a media socket of this daemon: the one question relaying asks."""
        normal = _normal(ip)
        if normal is None or normal not in self.hosts:
            return False
        wildcard = WILDCARDS[ipaddress.ip_address(normal).version]
        return self._ports[(normal, port)] > 0 or self._ports[(wildcard, port)] > 0

    def owner(self, ip: str, port: int) -> str | None:
        """The media worker media socket ``(ip, port)`` is open in, if it is one and that is known."""
        if not self.contains(ip, port):
            return None
        normal = _normal(ip)
        wildcard = WILDCARDS[ipaddress.ip_address(normal).version]
        return self._owners.get((normal, port)) or self._owners.get((wildcard, port))

    def serves(self, ip: str, port: int, room: str | None, endpoint: str) -> bool:
        """Whether ``(ip, port)`` is a media socket of ``endpoint``'s connection in ``room``: where
        the credentials issued to that endpoint may relay (a room of None: nowhere)."""
        if room is None or not self.contains(ip, port):
            return False
        normal = _normal(ip)
        wildcard = WILDCARDS[ipaddress.ip_address(normal).version]
        return (room, endpoint) in (self._holders.get((normal, port)), self._holders.get((wildcard, port)))

    __call__ = contains  # so that the registry itself can be passed as allowed_peer

    def sockets(self) -> list[tuple[str, int]]:
        return sorted(k for k, v in self._ports.items() if v > 0)
