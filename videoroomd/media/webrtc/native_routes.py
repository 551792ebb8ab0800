"""Where the compiled data plane sends one connection's subscribers' packets, kept current (asyncio side).

The compiled plane (:class:`..dataplane.native_plane.NativeDataPlane`) protects and
sends each packet itself, on a socket's descriptor, with the sending SRTP keys of
the connection's DTLS handshake (:mod:`.compat.srtp_keys`). :class:`ConnectionRoutes`
gives every subscriber of one connection that route (:class:`.dataplane.NativeRoute`)
once DTLS is connected and a pair is nominated, and gives it again when the
nominated pair changes (an ICE restart), or when the compiled module took over the
socket: :meth:`ConnectionRoutes.refresh` is called on those state changes, at once
when a check nominates a pair (:func:`.compat.ice_restart.follow_valid_pairs`), and
once a second besides. Until then a subscriber has no route and nothing is sent to it.

- A pair on a plain UDP socket (read by the compiled module's Port, or by the
  loop): the plane gets a duplicate of its descriptor, owned here, so that the
  descriptor the plane writes to is never closed under it and reused by another
  socket. The plane's sends are ``sendto`` calls at once, in packet order; the
  Port's own send queue carries RTP only for the Python plane, so nothing of one
  subscriber is queued there behind what the plane sent (aiortc's RTCP goes out
  with a plain ``sendto`` on the Port's transport, as before).
- A pair relayed through a TURN allocation, or on a socket that relays TURN clients
  of this server (no raw socket to write): the plane writes the protected
  packets into a Unix datagram socket pair (:class:`Relay`), whose other end the
  loop drains into the pair's transport. The kernel bounds that queue; when it is
  full the plane's send fails and it counts the subscriber as falling behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import structlog

from ..dataplane.interface import NativeRoute
from .compat import rtp as compat
from .compat.srtp_keys import NoSrtpKeys, srtp_keys

log = structlog.get_logger("videoroomd.media.native_routes")

RELAY_BATCH = 256  # datagrams a relay passes on per wakeup, so that one relay cannot hold the loop


class Relay:
    """A Unix datagram socket pair: the plane writes to :attr:`writer`, each datagram is sent on
    with ``target.sendto(data, address)`` (aioice's TURN transport of a relayed pair)."""

    def __init__(self, target: Any, address: Any):
        self.writer, self._reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.writer.setblocking(False)
        self._reader.setblocking(False)
        self._target, self._address = target, address
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._reader.fileno(), self._drain)

    def _drain(self) -> None:
        for _ in range(RELAY_BATCH):
            try:
                data = self._reader.recv(65536)
            except OSError:  # drained (BlockingIOError), or closed under us
                return
            try:
                self._target.sendto(data, self._address)
            except OSError:  # a full buffer or a closed allocation, as any lost datagram
                pass

    def close(self) -> None:
        if self._reader.fileno() != -1:
            self._loop.remove_reader(self._reader.fileno())
        self._reader.close()
        self.writer.close()


class ConnectionRoutes:
    """The route of every subscriber of one connection in a compiled ``plane``."""

    def __init__(self, plane, endpoint_id: str):
        self._plane = plane
        self._endpoint_id = endpoint_id
        self._dtls = None
        self._subscribers: set[str] = set()
        self._seen: tuple | None = None     # (pair, its transport, where the plane writes) of the route given
        self._route: NativeRoute | None = None
        self._owned: list[Any] = []         # the duplicate socket or relay behind the route given
        self._closed = False

    @property
    def route(self) -> NativeRoute | None:
        """The route a subscriber added now starts with (None: not connected yet)."""
        return self._route

    def bind(self, dtls) -> None:
        """The connection's DTLS transport (told by a subscriber's sender as it starts)."""
        self._dtls = dtls
        self.refresh()

    def add(self, subscriber_id: str) -> None:
        """A subscriber added to the plane with :attr:`route`; it gets every later route."""
        self._subscribers.add(subscriber_id)

    def discard(self, subscriber_id: str) -> None:
        self._subscribers.discard(subscriber_id)

    def refresh(self) -> None:
        """Give the subscribers a new route if the nominated pair or its socket changed; never raises
        (a route that cannot be made leaves the last one, logged)."""
        try:
            self._refresh()
        except Exception:
            log.warning("a connection's route for the compiled plane could not be made", peer=self._endpoint_id,
                        exc_info=True)

    def _refresh(self) -> None:
        if self._closed:  # (the peer connection's own closing changes its state once more)
            return
        dtls = self._dtls
        nominated = compat.nominated_route(dtls) if dtls is not None else None
        if nominated is None:
            return
        pair = nominated[1]
        target = compat.pair_socket(pair)
        if target is None:
            return
        seen = (pair, pair.protocol.transport, target)
        if seen == self._seen:
            return
        try:
            keys = srtp_keys(dtls)
        except NoSrtpKeys as error:
            log.warning("no route for the compiled plane", peer=self._endpoint_id, error=str(error))
            return
        if isinstance(target, socket.socket):
            owned: Any = socket.socket(fileno=os.dup(target.fileno()))
            owned.setblocking(False)
            route = NativeRoute(owned, pair.remote_addr, keys.profile, keys.tx_key, keys.tx_salt)
        else:
            owned = Relay(target, pair.remote_addr)
            route = NativeRoute(owned.writer, None, keys.profile, keys.tx_key, keys.tx_salt)
        for subscriber_id in list(self._subscribers):
            self._plane.set_route(subscriber_id, route)
        self._close_owned()
        self._seen, self._route, self._owned = seen, route, [owned]
        log.info("compiled plane route", peer=self._endpoint_id, relayed=not isinstance(target, socket.socket))

    def _close_owned(self) -> None:
        for owned in self._owned:
            owned.close()
        self._owned = []

    def close(self) -> None:
        """Close what the route holds; call once the connection's subscribers left the plane."""
        self._closed = True
        self._subscribers.clear()
        self._close_owned()
        self._route = self._seen = None
