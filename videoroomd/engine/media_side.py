"""The engine's side of its room's media worker: the link, and what the worker holds for the room.

:class:`MediaSide` opens the room's media on a worker (and again after the
worker is lost), sends the room's typed commands (:mod:`videoroomd.media.workers.commands`),
and keeps what the engine knows of the worker's state: which endpoints have a
connection there, and which media sockets each answer opened (told to the
media-address registry: the built-in TURN server relays to those only). The
worker's events go to the ``sink`` the engine gives, as they are. It decides
nothing about participants: removal runs room → engine → worker.

May import: videoroomd.media (client, commands, events, plane), config, turn.peers.
"""

from __future__ import annotations

from typing import Callable

import trio

from ..config import IceConfig, RoomConfig
from ..media.workers.client import MediaError
from ..media.workers.commands import CertificatePaths, Command, MediaSocket
from ..media.workers.events import RoomEvent, RoomLost
from ..media.workers.plane import MediaPlane, RoomLink
from ..turn.peers import MediaAddresses


class MediaSide:
    """One room's media on its worker, as its engine sees it."""

    def __init__(self, plane: MediaPlane, ice: IceConfig, config: RoomConfig, media_addresses: MediaAddresses | None,
                 sink: Callable[[RoomEvent | RoomLost], None]):
        self.plane = plane
        self.ice = ice
        self.config = config
        self.media_addresses = media_addresses
        self.sink = sink  # called by the worker's reader task: must never raise
        self.link: RoomLink | None = None  # None while no worker carries the room
        self.connections: set[str] = set()  # endpoints with a media connection on the worker
        self._sockets: dict[str, list[tuple[str, int]]] = {}  # endpoint -> media sockets its answer opened

    @property
    def key(self) -> str:
        """The room's name on its worker; raises AssertionError while no worker carries it."""
        assert self.link is not None
        return self.link.key

    async def open(self, silence_timeout: float) -> RoomLink:
        """Open the room's media on the least busy worker; raises WorkerLost or MediaError."""
        certificate = None
        if self.config.dtls_cert is not None and self.config.dtls_key is not None:
            certificate = CertificatePaths(str(self.config.dtls_cert), str(self.config.dtls_key))
        self.link = await self.plane.open_room(self.config.name, self.sink,
                                               ice_servers=[str(url) for url in self.config.stun_servers],
                                               certificate=certificate, addresses=list(self.ice.addresses),
                                               udp_ports=list(self.ice.udp_ports) if self.ice.udp_ports else None,
                                               max_video_bitrate=self.config.max_video_bitrate,
                                               silence_timeout=silence_timeout)
        return self.link

    async def call(self, command: Command, timeout: float) -> object:
        """Send ``command`` (one for this room) and return its result; raises MediaError,
        WorkerLost, or trio.TooSlowError after ``timeout`` seconds."""
        assert self.link is not None
        return await self.link.call(command, timeout=timeout)

    def offered(self, endpoint_id: str, sockets: tuple[MediaSocket, ...] = ()) -> None:
        """``endpoint_id``'s connection has ``sockets`` open now (none once it is closed)."""
        if self.media_addresses is None:
            return
        for ip, port in self._sockets.pop(endpoint_id, []):
            self.media_addresses.remove(ip, port)
        if sockets:
            self._sockets[endpoint_id] = [(s.host, s.port) for s in sockets]
            owner = self.link.worker_name if self.link is not None else None
            for s in sockets:
                self.media_addresses.add(s.host, s.port, owner)

    def lost(self) -> None:
        """The worker is gone, and every connection and socket it held for the room with it."""
        self.link = None
        for endpoint_id in list(self._sockets):
            self.offered(endpoint_id)
        self.connections.clear()

    async def close(self, timeout: float) -> None:
        """Close the room's media on its worker (shielded, at most ``timeout`` seconds); never raises."""
        for endpoint_id in list(self._sockets):
            self.offered(endpoint_id)
        if self.link is not None:
            with trio.CancelScope(shield=True):
                await self.link.close(timeout)

    def counters(self) -> dict[str, int]:
        """The room's forwarding counters as of the worker's last heartbeat."""
        return self.link.counters() if self.link is not None else {}

    def worker_name(self) -> str | None:
        return self.link.worker_name if self.link is not None else None


def describe(error: BaseException) -> str:
    """What went wrong, for a log line or a client: a worker's refusal names its own error type."""
    return str(error) if isinstance(error, MediaError) else f"{type(error).__name__}: {error}"
