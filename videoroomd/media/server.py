"""The media plane's side of the message boundary: commands in, aiortc work done, events out (asyncio).

One :class:`MediaServer` serves one connection to the control plane: in a
worker process (:mod:`.worker`) or on a thread of the daemon's own process
(:mod:`.client`, for tests and embedding); the messages are the same. It
owns the rooms placed on it (each an ``engine.rtc.RoomMedia``: one peer
connection per endpoint and the packet forwarder between them) and nothing
else. Commands run as tasks of their own, so a slow answer in one room does
not hold the others; one room's commands arrive one at a time because its
engine waits for each reply.

Every ``STATS_INTERVAL`` it sends a ``stats`` event (CPU seconds used, each
room's forwarding counters): the control plane reads it as the worker's
heartbeat.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Callable

import structlog
from aiortc import RTCIceServer
from aiortc.rtcdtlstransport import RTCCertificate

from ..certs import pem
from .aiortc_compat.ice import local_address, media_protocols
from .rtc import RoomMedia, SlotPlan
from . import messages
from .task_errors import TaskErrors
from .turn_relay import WorkerRelays

log = structlog.get_logger("videoroomd.media")

# Seconds between two stats events (the heartbeat): the control plane gives a worker up after
# 5 s without one (media.client.HEARTBEAT_TIMEOUT), so one a second leaves room for four to be
# late; each costs both processes a wakeup, the daemon a JSON decode.
STATS_INTERVAL = 1.0
REFUSED_LOG_INTERVAL = 10.0   # seconds between two log lines about refused layer commands
MAX_UNSENT = 8 * 1024 * 1024  # bytes of events the control plane has not read before the link is given up


class MediaServer:
    """The rooms of one media worker, driven by commands."""

    def __init__(self, send: Callable[[dict], None], cpu_clock: Callable[[], float] = time.process_time):
        self.send = send
        self.cpu_clock = cpu_clock
        self.rooms: dict[str, RoomMedia] = {}
        self._default_certificate: RTCCertificate | None = None
        self._tasks: set[asyncio.Task] = set()
        self.relays = WorkerRelays(self._media_protocol, send)  # the TURN clients handed to this worker
        self._refusals = 0                       # refused layer commands since the last logged
        self._refused_logged = float("-inf")

    def _media_protocol(self, address: tuple[str, int]):
        """The aioice protocol of this worker's media socket bound to ``address``, or None."""
        for room in self.rooms.values():
            for connection in room.connections.values():
                for protocol in media_protocols(connection.pc):
                    if local_address(protocol) == address:
                        return protocol
        return None

    # -- commands --------------------------------------------------------------------------
    def take(self, message: dict) -> None:
        """Start the command ``message``; its reply is sent when it is done."""
        task = asyncio.ensure_future(self._run(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, message: dict) -> None:
        request_id = message["id"]
        try:
            result = await getattr(self, f"_{message['type']}")(message)
        except Exception as error:  # the command fails, the worker goes on
            log.info("media command failed", command=message["type"], room=message.get("room"),
                     error=f"{type(error).__name__}: {error}")
            self.send(messages.reply(request_id, error=f"{type(error).__name__}: {error}"))
            return
        self.send(messages.reply(request_id, result))

    async def _ping(self, message: dict) -> None:
        return None

    async def _open_room(self, message: dict) -> None:
        room = message["room"]
        if room in self.rooms:
            raise ValueError(f"room {room!r} is open already")
        ice_servers = [RTCIceServer(urls=url) for url in message["ice_servers"]]

        def on_event(kind: str, endpoint_id: str, *args: Any) -> None:
            if kind == "state":
                self.send({"type": "state", "room": room, "endpoint": endpoint_id, "state": args[0]})
            elif kind == "vad":
                self.send({"type": "vad", "room": room, "track": args[0], "speaking": bool(args[1])})
            elif kind == "layer":
                self.send({"type": "layer", "room": room, "endpoint": endpoint_id, "track_id": args[0],
                           "layer": args[1], "reason": args[2]})
            elif kind == "bandwidth":
                self.send({"type": "bandwidth", "room": room, "endpoint": endpoint_id, "bps": int(args[0])})

        addresses = tuple(str(a) for a in message["addresses"])
        udp_ports = _port_range(message["udp_ports"])
        self.rooms[room] = RoomMedia(ice_servers, self._certificate(message["certificate"]), addresses, on_event,
                                     udp_ports, _max_bitrate(message.get("max_video_bitrate")))

    def _certificate(self, paths: dict | None) -> RTCCertificate:
        if paths is not None:
            return RTCCertificate(pem.load_private_key(Path(paths["key"])), pem.load_certificate(Path(paths["cert"])))
        if self._default_certificate is None:  # one for every connection of this worker
            self._default_certificate = RTCCertificate.generateCertificate()
        return self._default_certificate

    def _room(self, message: dict) -> RoomMedia:
        room = self.rooms.get(message["room"])
        if room is None:
            raise KeyError(f"no room {message['room']!r} on this worker")
        return room

    async def _answer(self, message: dict) -> str:
        slots = []
        for slot in message["slots"]:
            mid, track_id, stream_id = slot
            slots.append(SlotPlan(str(mid), None if track_id is None else str(track_id), str(stream_id)))
        connection = self._room(message).connection(message["endpoint"])
        return await connection.answer(message["sdp"], {str(k): str(v) for k, v in message["sending"].items()}, slots,
                                       _simulcast(message.get("simulcast")))

    async def _target_layer(self, message: dict) -> bool:
        """True when the layer was taken; False (logged, nothing changes) for a room, track or
        layer that is not here, or a track that is not simulcast."""
        room = self.rooms.get(message["room"])
        taken = room is not None and room.set_target(message["endpoint"], message["track_id"], message["layer"])
        if not taken:
            self._refused("target_layer", message)
        return taken

    async def _layer_enabled(self, message: dict) -> bool:
        """True when the track has that layer (now enabled or not); False (logged) otherwise."""
        room = self.rooms.get(message["room"])
        published = room.published.get(message["track_id"]) if room is not None else None
        taken = published is not None and published.set_layer_enabled(message["layer"], message["enabled"])
        if not taken:
            self._refused("layer_enabled", message)
        return taken

    def _refused(self, command: str, message: dict) -> None:
        """Log a refused layer command; at most one line every REFUSED_LOG_INTERVAL, whatever a
        client floods us with, with the count of those left out."""
        self._refusals += 1
        now = time.monotonic()
        if now - self._refused_logged < REFUSED_LOG_INTERVAL:
            return
        self._refused_logged = now
        log.info(f"{command} for no simulcast layer here ignored", room=message["room"][:64],
                 track=message["track_id"][:64], layer=message["layer"][:16], refused=self._refusals)
        self._refusals = 0

    async def _add_candidate(self, message: dict) -> None:
        connection = self._room(message).connections.get(message["endpoint"])
        if connection is None:
            raise KeyError("no media connection for this endpoint yet")
        await connection.add_candidate(message["candidate"], message["index"])

    async def _close_endpoint(self, message: dict) -> None:
        await self._room(message).close_endpoint(message["endpoint"])

    async def _silent(self, message: dict) -> list[str]:
        return self._room(message).silent(float(message["seconds"]))

    async def _endpoints(self, message: dict) -> list[str]:
        return sorted(self._room(message).connections)

    async def _close_room(self, message: dict) -> None:
        room = self.rooms.pop(message["room"], None)
        if room is not None:
            await room.close()

    # -- TURN allocations handed here (see .turn_relay) ---------------------------------------
    async def _turn_handoff(self, message: dict) -> None:
        await self.relays.take(message)

    async def _turn_update(self, message: dict) -> None:
        self.relays.update(message)

    async def _turn_send(self, message: dict) -> None:
        self.relays.send(message)

    async def _turn_release(self, message: dict) -> None:
        self.relays.release(message["relay"])

    # -- the heartbeat ----------------------------------------------------------------------
    def stats(self) -> dict:
        return {"type": "stats", "cpu_seconds": self.cpu_clock(),
                "rooms": {name: room.counters.as_dict() for name, room in self.rooms.items()},
                "turn": self.relays.stats()}

    async def close(self) -> None:
        self.relays.close()
        for task in list(self._tasks):
            task.cancel()
        for name in list(self.rooms):
            room = self.rooms.pop(name)
            try:
                await room.close()
            except Exception as error:  # closing what is left; the worker is going anyway
                log.info("closing a room failed", room=name, error=f"{type(error).__name__}: {error}")


async def serve(sock: socket.socket, cpu_clock: Callable[[], float] = time.process_time, parent: int | None = None,
                handoff: socket.socket | None = None) -> None:
    """Serve the control plane on ``sock`` until it closes the connection; then close every room.

    ``handoff``: a datagram socket on which the control plane passes the sockets of the TURN
    clients it hands to this worker (each with the token its ``turn_handoff`` command names).

    Returns when the control plane goes away (end of stream, or the ``parent``
    process is no longer this one's parent), it sends what is not a message, or
    it stops reading what is sent to it.
    """
    asyncio.get_running_loop().set_exception_handler(TaskErrors())
    reader, writer = await asyncio.open_connection(sock=sock)
    lost = asyncio.Event()

    def send(message: dict) -> None:
        if writer.is_closing():
            return
        writer.write(messages.encode(message))
        if writer.transport.get_write_buffer_size() > MAX_UNSENT:
            log.error("the control plane stopped reading; giving up the link")
            lost.set()

    server = MediaServer(send, cpu_clock)

    async def heartbeat() -> None:
        while True:
            if parent is not None and os.getppid() != parent:
                log.error("the daemon is gone; stopping")
                lost.set()
                return
            send(server.stats())
            await asyncio.sleep(STATS_INTERVAL)

    async def read() -> None:
        decoder = messages.Decoder()
        while True:
            try:
                data = await reader.read(65536)
            except OSError:  # the control plane's end is gone: as good as the end of the stream
                return
            if not data:
                return
            for message in decoder.feed(data):
                if message["type"] not in messages.COMMANDS:
                    raise messages.MessageError(f"{message['type']} is not a command")
                server.take(message)

    if handoff is not None:
        handoff.setblocking(False)
        asyncio.get_running_loop().add_reader(handoff.fileno(), _receive_fds, handoff, server)

    beating = asyncio.ensure_future(heartbeat())
    reading = asyncio.ensure_future(read())
    waiting = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if reading in done and reading.exception() is not None:
            log.error("the control plane sent what is not a message; closing", error=str(reading.exception()))
    finally:
        for task in (beating, reading, waiting):
            task.cancel()
        if handoff is not None:
            asyncio.get_running_loop().remove_reader(handoff.fileno())
        await server.close()
        writer.close()


def _receive_fds(handoff: socket.socket, server: MediaServer) -> None:
    """Take the sockets the control plane passed (one per datagram, named by its token)."""
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(handoff, 256, 4)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            log.error("the socket for TURN handoffs failed", error=str(error))
            asyncio.get_running_loop().remove_reader(handoff.fileno())
            return
        if not data and not fds:
            asyncio.get_running_loop().remove_reader(handoff.fileno())
            return
        for extra in fds[1:]:
            os.close(extra)
        if fds:
            server.relays.fd_received(data.decode("ascii", "replace"), fds[0])


_RID = re.compile(r"[A-Za-z0-9_-]{1,16}")  # RFC 8851's rid-id, kept short


def _simulcast(value: Any) -> dict[str, list[str]]:
    """``answer``'s optional simulcast: {mid: [RID, ...]} (absent or None: none)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(rids, list) and 1 <= len(rids) <= 8 and all(isinstance(r, str) and _RID.fullmatch(r) for r in rids)
            and len(set(rids)) == len(rids) for rids in value.values()):
        raise ValueError("simulcast must be {mid: [RID, ...]} with 1 to 8 distinct RIDs per mid, "
                         "each 1 to 16 letters, digits, '-' or '_'")
    return {str(mid): list(rids) for mid, rids in value.items()}


def _max_bitrate(value: Any) -> int | None:
    """``open_room``'s optional max_video_bitrate: None, or bits/s (a positive integer)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"max_video_bitrate must be a positive integer (bits/s) or null, got {value!r}")
    return value


def _port_range(value: list | None) -> tuple[int, int] | None:
    """``open_room``'s udp_ports: None, or [FIRST, LAST] with 1 <= FIRST <= LAST <= 65535."""
    if value is None:
        return None
    if (len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 1 <= value[0] <= value[1] <= 65535):
        raise ValueError(f"udp_ports must be [FIRST, LAST] with 1 <= FIRST <= LAST <= 65535, got {value!r}")
    return value[0], value[1]
