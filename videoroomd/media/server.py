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
import socket
import time
from pathlib import Path
from typing import Any, Callable

import structlog
from aiortc import RTCIceServer
from aiortc.rtcdtlstransport import RTCCertificate

from ..certs import pem
from .rtc import RoomMedia, SlotPlan
from . import messages
from .task_errors import TaskErrors

log = structlog.get_logger("videoroomd.media")

# Seconds between two stats events (the heartbeat): the control plane gives a worker up after
# 5 s without one (media.client.HEARTBEAT_TIMEOUT), so one a second leaves room for four to be
# late; each costs both processes a wakeup, the daemon a JSON decode.
STATS_INTERVAL = 1.0
MAX_UNSENT = 8 * 1024 * 1024  # bytes of events the control plane has not read before the link is given up


class MediaServer:
    """The rooms of one media worker, driven by commands."""

    def __init__(self, send: Callable[[dict], None], cpu_clock: Callable[[], float] = time.process_time):
        self.send = send
        self.cpu_clock = cpu_clock
        self.rooms: dict[str, RoomMedia] = {}
        self._default_certificate: RTCCertificate | None = None
        self._tasks: set[asyncio.Task] = set()

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

        addresses = tuple(str(a) for a in message["addresses"])
        udp_ports = _port_range(message["udp_ports"])
        self.rooms[room] = RoomMedia(ice_servers, self._certificate(message["certificate"]), addresses, on_event,
                                     udp_ports)

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
        return await connection.answer(message["sdp"], {str(k): str(v) for k, v in message["sending"].items()}, slots)

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

    # -- the heartbeat ----------------------------------------------------------------------
    def stats(self) -> dict:
        return {"type": "stats", "cpu_seconds": self.cpu_clock(),
                "rooms": {name: room.counters.as_dict() for name, room in self.rooms.items()}}

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for name in list(self.rooms):
            room = self.rooms.pop(name)
            try:
                await room.close()
            except Exception as error:  # closing what is left; the worker is going anyway
                log.info("closing a room failed", room=name, error=f"{type(error).__name__}: {error}")


async def serve(sock: socket.socket, cpu_clock: Callable[[], float] = time.process_time, parent: int | None = None) -> None:
    """Serve the control plane on ``sock`` until it closes the connection; then close every room.

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
        await server.close()
        writer.close()


def _port_range(value: list | None) -> tuple[int, int] | None:
    """``open_room``'s udp_ports: None, or [FIRST, LAST] with 1 <= FIRST <= LAST <= 65535."""
    if value is None:
        return None
    if (len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 1 <= value[0] <= value[1] <= 65535):
        raise ValueError(f"udp_ports must be [FIRST, LAST] with 1 <= FIRST <= LAST <= 65535, got {value!r}")
    return value[0], value[1]
