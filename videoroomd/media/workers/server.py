"""The media plane's side of the message boundary: commands in, aiortc work done, events out (asyncio).

One :class:`MediaServer` serves one connection to the control plane: in a
worker process (:mod:`.worker`) or on a thread of the daemon's own process
(:mod:`.client`, for tests and embedding); the messages are the same. It
owns the rooms placed on it (each an ``engine.rtc.RoomMedia``: one peer
connection per endpoint and the packet forwarder between them) and nothing
else. Commands run as tasks of their own, so a slow answer in one room does
not hold the others; one room's commands arrive one at a time because its
engine waits for each reply.

Every ``STATS_INTERVAL`` it sends a :class:`~.events.Stats` event (CPU
seconds used, each room's forwarding counters): the control plane reads it
as the worker's heartbeat. On the same beat it reports the endpoints gone
silent (:class:`~.events.Silent`); the control plane decides their removal.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import structlog
from aiortc import RTCIceServer
from aiortc.rtcdtlstransport import RTCCertificate

from ...certs import pem
from ..webrtc.compat.ice import local_address, media_protocols
from ..webrtc.compat.native_port import PortTally
from ..webrtc.compat.rtcp_in import DROPPED as rtcp_dropped_counts
from ..webrtc.connections import RoomMedia, SlotPlan
from .codec import Decoder, MessageError, encode
from .commands import (AddCandidate, Answer, Answered, CertificatePaths, CloseEndpoint, CloseRoom, HoldTrack,
                       LayerEnabled, ListEndpoints, MediaSocket, OpenRoom, Ping, RecordingSummary, Request,
                       StartRecording, StopRecording, TargetLayer, TurnHandoff, TurnRelease, TurnSend, TurnUpdate)
from .events import Bandwidth, EndpointState, LayerSwitched, RecordingEnded, Reply, Silent, Stats, Vad
from .offer_errors import refused
from .task_errors import TaskErrors
from ...turn.worker_relay import WorkerRelays

log = structlog.get_logger("videoroomd.media")

# Seconds between two stats events (the heartbeat): the control plane gives a worker up after
# 5 s without one (media.client.HEARTBEAT_TIMEOUT), so one a second leaves room for four to be
# late; each costs both processes a wakeup, the daemon a JSON decode.
STATS_INTERVAL = 1.0
REFUSED_LOG_INTERVAL = 10.0   # seconds between two log lines about refused layer commands
MAX_UNSENT = 8 * 1024 * 1024  # bytes of events the control plane has not read before the link is given up


class NotHere(LookupError):
    """A command names a room or an endpoint this worker does not have."""


class MediaServer:
    """The rooms of one media worker, driven by commands; ``send`` takes each event it makes."""

    def __init__(self, send: Callable[[Any], None], cpu_clock: Callable[[], float] = time.process_time):
        self.send = send
        self.cpu_clock = cpu_clock
        self.rooms: dict[str, RoomMedia] = {}
        self.silence_timeouts: dict[str, float] = {}  # room -> seconds of silence before it is reported
        self._default_certificate: RTCCertificate | None = None
        self._tasks: set[asyncio.Task] = set()
        self.relays = WorkerRelays(self._media_protocol, send)  # the TURN clients handed to this worker
        self.ports = PortTally()  # the media sockets the compiled module read for this worker's rooms
        self._refusals = 0                       # refused layer commands since the last logged
        self._refused_logged = float("-inf")
        self._handlers: dict[type, Callable[[Any], Awaitable[Any]]] = {
            Ping: self._ping, OpenRoom: self._open_room, Answer: self._answer, AddCandidate: self._add_candidate,
            CloseEndpoint: self._close_endpoint, ListEndpoints: self._endpoints, CloseRoom: self._close_room,
            TargetLayer: self._target_layer, LayerEnabled: self._layer_enabled, HoldTrack: self._hold_track,
            TurnHandoff: self._turn_handoff, TurnUpdate: self._turn_update, TurnSend: self._turn_send,
            TurnRelease: self._turn_release, StartRecording: self._start_recording, StopRecording: self._stop_recording}

    def _media_protocol(self, address: tuple[str, int]):
        """The aioice protocol of this worker's media socket bound to ``address``, or None."""
        for room in self.rooms.values():
            for connection in room.connections.values():
                for protocol in media_protocols(connection.pc):
                    if local_address(protocol) == address:
                        return protocol
        return None

    # -- commands --------------------------------------------------------------------------
    def take(self, request: Request) -> None:
        """Start the command ``request`` carries; its reply is sent when it is done."""
        task = asyncio.ensure_future(self._run(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request: Request) -> None:
        command = request.command
        try:
            result = await self._handlers[type(command)](command)
        except Exception as error:  # the command fails, the worker goes on
            log.info("media command failed", command=command.kind, room=getattr(command, "room", None),
                     error=f"{type(error).__name__}: {error}")
            self.send(Reply(request.id, ok=False, error=f"{type(error).__name__}: {error}"))
            return
        self.send(Reply(request.id, ok=True, result=result))

    async def _ping(self, command: Ping) -> None:
        return None

    async def _open_room(self, command: OpenRoom) -> None:
        room = command.room
        if room in self.rooms:
            raise ValueError(f"room {room!r} is open already")
        ice_servers = [RTCIceServer(urls=url) for url in command.ice_servers]
        on_event = _room_events(room, self.send)
        self.rooms[room] = RoomMedia(ice_servers, self._certificate(command.certificate), command.addresses, on_event,
                                     _port_range(command.udp_ports), _max_bitrate(command.max_video_bitrate),
                                     _data_plane(command.data_plane), self.ports)
        self.silence_timeouts[room] = command.silence_timeout

    def _certificate(self, paths: CertificatePaths | None) -> RTCCertificate:
        if paths is not None:
            return RTCCertificate(pem.load_private_key(Path(paths.key)), pem.load_certificate(Path(paths.cert)))
        if self._default_certificate is None:  # one for every connection of this worker
            self._default_certificate = RTCCertificate.generateCertificate()
        return self._default_certificate

    def _room(self, room: str) -> RoomMedia:
        media = self.rooms.get(room)
        if media is None:
            raise NotHere(f"no room {room[:80]!r} on this worker")
        return media

    async def _answer(self, command: Answer) -> Answered:
        slots = [SlotPlan(slot.mid, slot.track_id, slot.stream_id) for slot in command.slots]
        connection = self._room(command.room).connection(command.endpoint)
        try:
            sdp = await connection.answer(command.sdp, dict(command.sending), slots, _simulcast(command.simulcast))
        except Exception as error:  # whatever aiortc raises for an offer: a stable refusal, the detail logged
            raise refused(error, command.endpoint) from None
        return Answered(sdp, tuple(MediaSocket(host, port) for host, port in connection.sockets()))

    async def _target_layer(self, command: TargetLayer) -> bool:
        """True when the layer was taken; False (logged, nothing changes) for a room, track or
        layer that is not here, or a track that is not simulcast."""
        room = self.rooms.get(command.room)
        taken = room is not None and room.set_target(command.endpoint, command.track_id, command.layer)
        if not taken:
            self._refused(command)
        return taken

    async def _layer_enabled(self, command: LayerEnabled) -> bool:
        """True when the track has that layer (now enabled or not); False (logged) otherwise."""
        room = self.rooms.get(command.room)
        published = room.published.get(command.track_id) if room is not None else None
        taken = published is not None and published.set_layer_enabled(command.layer, command.enabled)
        if not taken:
            self._refused(command)
        return taken

    async def _hold_track(self, command: HoldTrack) -> bool:
        """True when the track is published in the room now; the hold is kept either way."""
        room = self._room(command.room)
        if command.held:
            room.held.add(command.track_id)
        else:
            room.held.discard(command.track_id)
        return command.track_id in room.published

    def _refused(self, command: TargetLayer | LayerEnabled) -> None:
        """Log a refused layer command; at most one line every REFUSED_LOG_INTERVAL, whatever a
        client floods us with, with the count of those left out."""
        self._refusals += 1
        now = time.monotonic()
        if now - self._refused_logged < REFUSED_LOG_INTERVAL:
            return
        self._refused_logged = now
        log.info(f"{command.kind} for no simulcast layer here ignored", room=command.room[:64],
                 track=command.track_id[:64], layer=command.layer[:16], refused=self._refusals)
        self._refusals = 0

    async def _add_candidate(self, command: AddCandidate) -> None:
        connection = self._room(command.room).connections.get(command.endpoint)
        if connection is None:
            raise NotHere(f"no media connection for endpoint {command.endpoint[:80]!r} yet")
        await connection.add_candidate(command.candidate, command.index)

    async def _close_endpoint(self, command: CloseEndpoint) -> None:
        await self._room(command.room).close_endpoint(command.endpoint)

    async def _endpoints(self, command: ListEndpoints) -> list[str]:
        return sorted(self._room(command.room).connections)

    async def _close_room(self, command: CloseRoom) -> None:
        self.silence_timeouts.pop(command.room, None)
        room = self.rooms.pop(command.room, None)
        if room is not None:
            await room.close()

    async def _start_recording(self, command: StartRecording) -> str:
        return self._room(command.room).recording.start(command.directory, command.room_id, command.recording_id,
                                                        command.quota, command.meta)

    async def _stop_recording(self, command: StopRecording) -> RecordingSummary:
        return RecordingSummary(**self._room(command.room).recording.stop())

    def check_silence(self) -> None:
        """Report each endpoint that went silent past its room's timeout, once (see :class:`Silent`).

        aiortc never reports "disconnected", and its consent checks take ~30 s to give up on
        a client whose network is gone; the others would watch a frozen tile that long."""
        for name, room in self.rooms.items():
            timeout = self.silence_timeouts.get(name)
            if timeout is None:
                continue
            for endpoint_id in room.newly_silent(timeout):
                self.send(Silent(name, endpoint_id, timeout))

    # -- TURN allocations handed here (see .turn_relay) ---------------------------------------
    async def _turn_handoff(self, command: TurnHandoff) -> None:
        await self.relays.take(command)

    async def _turn_update(self, command: TurnUpdate) -> None:
        self.relays.update(command)

    async def _turn_send(self, command: TurnSend) -> None:
        self.relays.send(command)

    async def _turn_release(self, command: TurnRelease) -> None:
        self.relays.release(command.relay)

    # -- the heartbeat ----------------------------------------------------------------------
    def stats(self) -> Stats:
        return Stats(self.cpu_clock(), {name: room.counters.as_dict() for name, room in self.rooms.items()},
                     self.relays.stats(), {**self.ports.totals(), **rtcp_dropped_counts})

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

    def send(message: Any) -> None:
        if writer.is_closing():
            return
        writer.write(encode(message))
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
            server.check_silence()
            for room in server.rooms.values():
                room.refresh_routes()  # (a nomination moves the routes at once; this catches any change it missed)
            await asyncio.sleep(STATS_INTERVAL)

    async def read() -> None:
        decoder = Decoder()
        while True:
            try:
                data = await reader.read(65536)
            except OSError:  # the control plane's end is gone: as good as the end of the stream
                return
            if not data:
                return
            for message in decoder.feed(data):
                if not isinstance(message, Request):
                    raise MessageError(f"{message.kind} is not a command")
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


def _room_events(room: str, send: Callable[[Any], None]) -> Callable[..., None]:
    """What ``RoomMedia`` reports as ``(kind, endpoint_id, *args)``, sent as the event it is."""
    def on_event(kind: str, endpoint_id: str, *args: Any) -> None:
        if kind == "state":
            send(EndpointState(room, endpoint_id, str(args[0])))
        elif kind == "vad":
            send(Vad(room, str(args[0]), bool(args[1])))
        elif kind == "layer":
            send(LayerSwitched(room, endpoint_id, str(args[0]), str(args[1]), str(args[2])))
        elif kind == "bandwidth":
            send(Bandwidth(room, endpoint_id, int(args[0])))
        elif kind == "recording":
            send(RecordingEnded(room, str(args[0]), str(args[1]), str(args[2])))

    return on_event


_RID = re.compile(r"[A-Za-z0-9_-]{1,16}")  # RFC 8851's rid-id, kept short


def _simulcast(value: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """``Answer.simulcast``, checked: {mid: [RID, ...]} (empty: none)."""
    if not all(1 <= len(rids) <= 8 and all(_RID.fullmatch(r) for r in rids) and len(set(rids)) == len(rids)
               for rids in value.values()):
        raise ValueError("simulcast must be {mid: [RID, ...]} with 1 to 8 distinct RIDs per mid, "
                         "each 1 to 16 letters, digits, '-' or '_'")
    return {str(mid): list(rids) for mid, rids in value.items()}


def _max_bitrate(value: int | None) -> int | None:
    """``OpenRoom.max_video_bitrate``, checked: None, or bits/s (a positive integer)."""
    if value is None:
        return None
    if value <= 0:
        raise ValueError(f"max_video_bitrate must be a positive integer (bits/s) or null, got {value!r}")
    return value


def _port_range(value: tuple[int, int] | None) -> tuple[int, int] | None:
    """``OpenRoom.udp_ports``, checked: None, or (FIRST, LAST) with 1 <= FIRST <= LAST <= 65535."""
    if value is None:
        return None
    if not 1 <= value[0] <= value[1] <= 65535:
        raise ValueError(f"udp_ports must be [FIRST, LAST] with 1 <= FIRST <= LAST <= 65535, got {value!r}")
    return value[0], value[1]


def _data_plane(value) -> str:
    """``OpenRoom.data_plane``, checked: "python" or "native"."""
    if value not in ("python", "native"):
        raise ValueError(f"data_plane must be \"python\" or \"native\", got {value!r}")
    return value
