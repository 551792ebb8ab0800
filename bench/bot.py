"""One benchmark participant, run as its own process: ``python -m bench.bot URL ROOM NAME CLIP``.

It publishes the clip's video and audio and receives everyone else, like
the browser client: Phoenix channel, media events, one RTCPeerConnection
(aiortc on an asyncio thread of its own), the client always offering.

It obeys one-line commands on stdin and answers with JSON lines on stdout:
``join`` (start the call), ``snap`` (print the counters now), ``quit``.
It ends on ``quit``, when stdin closes, or after ``--lifetime`` seconds.
With ``--relay udp|tcp`` all its media goes through the daemon's TURN server
(the entry of ``offerData.integratedTurnServers`` for that transport, and
the relay ICE transport policy); its snaps then say which candidate pair ICE
nominated (``route``), so the harness sees whether it really was relayed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import uuid

import structlog
import trio
from aiortc import (RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection,
                    RTCSessionDescription)
from aiortc.exceptions import InvalidStateError

from testsupport.asyncio_thread import AsyncioThread
from testsupport.phoenix import PhoenixClient, phoenix_socket
from videoroomd.media.aiortc_compat.ice import ice_connections
from videoroomd.media.rtc import codec_preferences, limit_host_addresses

from . import clip as clips
from .processes import participant_arguments
from .relay import TRANSPORTS, ice_servers
from .tracks import ClipAudioTrack, ClipVideoTrack, ReceiveCounter, SenderWatch, send_audio_level

STEP_TIMEOUT = 15.0  # seconds for a join reply or the "connected" event


def emit(message: dict) -> None:
    try:
        print(json.dumps(message), flush=True)
    except BrokenPipeError:
        pass  # the harness is gone; the bot ends when stdin closes


class Participant:
    """The call's state; the aiortc objects are touched only on the media thread (``self.media.call``)."""

    def __init__(self, clip: clips.Clip, media: AsyncioThread, name: str, relay: str | None = None):
        self.clip = clip
        self.relay = relay  # "udp" or "tcp": media only through the daemon's TURN server over it
        self.media = media
        self.name = name
        self.id: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.local: dict[str, object] = {}                  # our track id -> track
        self.watches: dict[str, SenderWatch] = {}           # kind -> what the server says of our sender
        self.states: list[tuple[float, str]] = []           # connection state changes (monotonic time, state)
        self.problems: list[str] = []                       # negotiations that failed here, errors from the server
        self.receivers: list[tuple[object, ReceiveCounter]] = []  # (transceiver, counter)
        self.mid_to_track_id: dict[str, str] = {}
        self.connected = trio.Event()
        self.tracks: dict[str, str] = {}                     # kind -> our track id
        self.t_join: float | None = None
        self.room: str | None = None

    # -- media thread -------------------------------------------------------------------
    def _ensure_pc(self, turn_servers: list[dict]) -> RTCPeerConnection:
        """The connection, made at the first offerData (whose ``integratedTurnServers`` a relayed
        bot needs), with the published tracks on it first, as the browser client does."""
        if self.pc is None:
            # No STUN: loopback only. max-bundle, as browsers offer in effect: with aiortc's default
            # ("balanced"), a second transceiver of a kind made before the first answer stays on a
            # transport that the answer's BUNDLE then closes, and never receives.
            configuration = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            if self.relay is not None:
                servers = ice_servers(turn_servers, self.relay)
                if not servers:
                    raise RuntimeError(f"offerData lists no TURN server over {self.relay}: {turn_servers}")
                # aiortc uses the first TURN server only; relay policy: no host candidates at all.
                configuration.iceServers = [RTCIceServer(**servers[0])]
                configuration.iceTransportPolicy = RTCIceTransportPolicy.RELAY
            self.pc = RTCPeerConnection(configuration)
            pc = self.pc
            pc.on("connectionstatechange", lambda: self.states.append((time.monotonic(), pc.connectionState)))
            pc.on("iceconnectionstatechange",
                  lambda: self.states.append((time.monotonic(), "ice-" + pc.iceConnectionState)))
            for track in self.local.values():
                transceiver = pc.addTransceiver(track, direction="sendonly")
                transceiver.setCodecPreferences(codec_preferences(track.kind))
                self.watches[track.kind] = SenderWatch(transceiver.sender, track)
                if track.kind == "audio":
                    send_audio_level(transceiver.sender)
        return self.pc

    async def _make_tracks(self) -> dict[str, str]:
        ids = {}
        for track in (ClipAudioTrack(self.clip), ClipVideoTrack(self.clip)):
            track_id = f"{self.id}:{uuid.uuid4()}"
            self.local[track_id] = track
            ids[track.kind] = track_id
        return ids

    async def _make_offer(self, tracks_types: dict[str, int], turn_servers: list[dict]) -> tuple[str, dict[str, str]]:
        pc = self._ensure_pc(turn_servers)
        for kind in ("audio", "video"):
            have = sum(1 for _t, counter in self.receivers if counter.kind == kind)
            for _ in range(tracks_types.get(kind, 0) - have):
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(codec_preferences(kind))
                self.receivers.append((transceiver, ReceiveCounter(transceiver.receiver, kind)))
        if self.relay is None:  # (it would add a host candidate even under the relay policy)
            limit_host_addresses(pc, ("127.0.0.1",))
        await pc.setLocalDescription(await pc.createOffer())
        sending = {}
        for transceiver in pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None and transceiver.mid is not None:
                sending[transceiver.mid] = next(i for i, t in self.local.items() if t is track)
        return pc.localDescription.sdp, sending

    async def _apply_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def _counts(self) -> dict:
        received = {}
        for transceiver, counter in self.receivers:
            if transceiver.mid is not None:
                received[transceiver.mid] = {"track": self.mid_to_track_id.get(transceiver.mid), **counter.counts()}
        sent = {track.kind: {"frames": track.sent, **self.watches[track.kind].counts()}
                for track in self.local.values() if track.kind in self.watches}
        return {"received": received, "sent": sent, "states": self.states, "route": self._route()}

    def _route(self) -> dict | None:
        """The candidate types of the ICE pair nominated for the (bundled) connection, and the
        relay transport asked for; None before one is nominated."""
        for connection in ice_connections(self.pc):
            pair = connection._nominated.get(1)  # aioice 0.13: the nominated pair of component 1
            if pair is not None:
                return {"local": pair.local_candidate.type, "remote": pair.remote_candidate.type,
                        "relay": self.relay}
        return None

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()

    # -- trio side ---------------------------------------------------------------------
    async def snapshot(self) -> dict:
        counts = await self.media.call(self._counts) if self.pc is not None else {"received": {}, "sent": {}}
        counts["problems"] = self.problems[-10:]
        return {"event": "snap", "t": time.monotonic(), "cpu": time.process_time(), **counts}

    async def pump(self, client: PhoenixClient) -> None:
        """Read media events, answering offerData as the browser client does.

        A negotiation the bot's own connection refuses (it closed, say) is
        noted in the snapshots, and the bot stays in the call to be counted.
        """
        while True:
            event = await client.next_media_event(math.inf, closing_raises=True)
            kind, data = event["type"], event.get("data")
            if kind == "custom":
                kind, data = data["type"], data.get("data")
            try:
                await self._handle(client, kind, data)
            except InvalidStateError as error:
                self.problems.append(f"{kind}: {error}")

    async def _handle(self, client: PhoenixClient, kind: str, data) -> None:
        if kind == "connected":
            # Like the browser client, whose app adds its tracks on "connected": they go on the
            # connection (made at the first offerData, with its TURN servers) before the first
            # offer, so that offer carries them.
            self.id = data["id"]
            self.tracks = await self.media.call(self._make_tracks)
            await client.media_event(self.room, {"type": "custom", "data": {"type": "renegotiateTracks"}})
            self.connected.set()
        elif kind == "offerData":
            sdp, sending = await self.media.call(self._make_offer, data["tracksTypes"],
                                                 data.get("integratedTurnServers") or [])
            await client.media_event(self.room, {"type": "custom", "data": {"type": "sdpOffer", "data": {
                "sdpOffer": {"type": "offer", "sdp": sdp},
                "trackIdToTrackMetadata": {t: {"name": self.name} for t in sending.values()},
                "trackIdToTrackBitrates": {},
                "midToTrackId": sending,
            }}})
        elif kind == "sdpAnswer":
            self.mid_to_track_id = data["midToTrackId"]
            await self.media.call(self._apply_answer, data["sdp"])
        elif kind == "error":
            self.problems.append(f"server: {data}")

    async def call(self, url: str, room: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Join, publish, and stay in the call until cancelled."""
        self.t_join = time.monotonic()
        self.room = room
        async with phoenix_socket(url) as client:
            reply = await client.join(room, timeout=STEP_TIMEOUT, displayName=self.name)
            if reply.get("status") != "ok":
                raise RuntimeError(f"join refused: {reply}")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.pump, client)
                nursery.start_soon(client.heartbeat)
                await client.media_event(room, {"type": "connect", "data": {"metadata": {"displayName": self.name}}})
                with trio.fail_after(STEP_TIMEOUT):
                    await self.connected.wait()
                emit({"event": "joined", "id": self.id, "t_join": self.t_join, "tracks": self.tracks})
                task_status.started()
                await trio.sleep_forever()


async def stdin_lines():
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode().strip()


async def main(args: argparse.Namespace) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries JSON only
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aioice.ice").setLevel(logging.INFO)  # says so when ICE consent expires
    clip = clips.load(args.clip)
    media = AsyncioThread("bot-media")
    media.start()
    participant = Participant(clip, media, args.name, relay=None if args.relay == "none" else args.relay)
    try:
        with trio.move_on_after(args.lifetime):
            async with trio.open_nursery() as nursery:
                emit({"event": "ready"})
                async for command in stdin_lines():
                    if command == "join":
                        await nursery.start(participant.call, args.url, args.room)
                    elif command == "snap":
                        emit(await participant.snapshot())
                    elif command == "quit":
                        break
                nursery.cancel_scope.cancel()
        return 0
    finally:
        with trio.move_on_after(5) as cleanup:
            cleanup.shield = True
            await media.call(participant.close)
        media.stop()


def parse(argv: list[str]) -> argparse.Namespace:
    return participant_arguments("python -m bench.bot", __doc__.split("\n")[0], argv,
                                 url_help="ws://127.0.0.1:PORT/socket/websocket?vsn=2.0.0",
                                 clip_help="a clip file written by bench.clip", relay=("none", *TRANSPORTS))


if __name__ == "__main__":
    try:
        sys.exit(trio.run(main, parse(sys.argv[1:])))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # one line for the harness, the traceback on stderr
        emit({"event": "error", "error": f"{type(error).__name__}: {error}"})
        raise
