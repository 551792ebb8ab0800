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
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection
from aiortc.exceptions import InvalidStateError

from testsupport.asyncio_thread import AsyncioThread
from testsupport.media_bot import Bot
from testsupport.phoenix import phoenix_socket
from videoroomd.media.webrtc.compat.ice import ice_connections
from videoroomd.media.webrtc.connections import codec_preferences

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


class Participant(Bot):
    """The tests' aiortc participant (testsupport.media_bot.Bot) publishing a clip: its connection
    made at the first offerData, max-bundle, with the clip's tracks on it first and counters on
    every sender and receiver; relayed through the daemon's TURN server when ``relay`` says so."""

    event_timeout = math.inf  # a benchmark participant waits as long as the call lasts
    closing_raises = True     # a channel the server closed ends the bot, which says so

    def __init__(self, clip: clips.Clip, media: AsyncioThread, name: str, relay: str | None = None):
        super().__init__(None, None, name, media)
        self.clip = clip
        self.relay = relay  # "udp" or "tcp": media only through the daemon's TURN server over it
        if relay is not None:
            self.host_addresses = ()  # (limiting them would add a host candidate even under the relay policy)
        self.turn_servers: list[dict] = []                  # offerData.integratedTurnServers
        self.watches: dict[str, SenderWatch] = {}           # kind -> what the server says of our sender
        self.states: list[tuple[float, str]] = []           # connection state changes (monotonic time, state)
        self.problems: list[str] = []                       # negotiations that failed here, errors from the server
        self.receivers: list[tuple[object, ReceiveCounter]] = []  # (transceiver, counter)
        self.connected = trio.Event()
        self.tracks: dict[str, str] = {}                     # kind -> our track id
        self.t_join: float | None = None

    # -- media thread -------------------------------------------------------------------
    def _make_pc(self) -> None:
        """The connection, made at the first offerData (whose ``integratedTurnServers`` a relayed
        bot needs), with the published tracks on it first, as the browser client does."""
        # No STUN: loopback only. max-bundle, as browsers offer in effect: with aiortc's default
        # ("balanced"), a second transceiver of a kind made before the first answer stays on a
        # transport that the answer's BUNDLE then closes, and never receives.
        configuration = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        if self.relay is not None:
            servers = ice_servers(self.turn_servers, self.relay)
            if not servers:
                raise RuntimeError(f"offerData lists no TURN server over {self.relay}: {self.turn_servers}")
            # aiortc uses the first TURN server only; relay policy: no host candidates at all.
            configuration.iceServers = [RTCIceServer(**servers[0])]
            configuration.iceTransportPolicy = RTCIceTransportPolicy.RELAY
        self.pc = pc = RTCPeerConnection(configuration)
        pc.on("connectionstatechange", lambda: self.states.append((time.monotonic(), pc.connectionState)))
        pc.on("iceconnectionstatechange",
              lambda: self.states.append((time.monotonic(), "ice-" + pc.iceConnectionState)))
        for track in self.local.values():
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(codec_preferences(track.kind))
            self.watches[track.kind] = SenderWatch(transceiver.sender, track)
            if track.kind == "audio":
                send_audio_level(transceiver.sender)

    def _add_receiver(self, kind: str):
        transceiver = self.pc.addTransceiver(kind, direction="recvonly")
        transceiver.setCodecPreferences(codec_preferences(kind))
        self.receivers.append((transceiver, ReceiveCounter(transceiver.receiver, kind)))
        return transceiver

    async def _make_tracks(self) -> dict[str, str]:
        ids = {}
        for track in (ClipAudioTrack(self.clip), ClipVideoTrack(self.clip)):
            track_id = f"{self.id}:{uuid.uuid4()}"
            self.local[track_id] = track
            ids[track.kind] = track_id
        return ids

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

    # -- trio side ---------------------------------------------------------------------
    async def snapshot(self) -> dict:
        counts = await self.media.call(self._counts) if self.pc is not None else {"received": {}, "sent": {}}
        counts["problems"] = self.problems[-10:]
        return {"event": "snap", "t": time.monotonic(), "cpu": time.process_time(), **counts}

    async def on_event(self, kind: str, data) -> None:
        """Besides offerData and sdpAnswer (as any bot): on "connected", the clip's tracks and a
        renegotiation; an error from the server is noted.

        A negotiation the bot's own connection refuses (it closed, say) is noted in the
        snapshots, and the bot stays in the call to be counted."""
        try:
            if kind == "connected":
                # Like the browser client, whose app adds its tracks on "connected": they go on the
                # connection (made at the first offerData, with its TURN servers) before the first
                # offer, so that offer carries them.
                self.id = data["id"]
                self.tracks = await self.media.call(self._make_tracks)
                await self.send({"type": "custom", "data": {"type": "renegotiateTracks"}})
                self.connected.set()
            elif kind == "offerData":
                self.turn_servers = data.get("integratedTurnServers") or []
                await super().on_event(kind, data)
            elif kind == "error":
                self.problems.append(f"server: {data}")
            else:
                await super().on_event(kind, data)
        except InvalidStateError as error:
            self.problems.append(f"{kind}: {error}")

    async def call(self, url: str, room: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Join, publish, and stay in the call until cancelled."""
        self.t_join = time.monotonic()
        async with phoenix_socket(url) as client:
            self.client, self.room = client, room
            reply = await client.join(room, timeout=STEP_TIMEOUT, displayName=self.name)
            if reply.get("status") != "ok":
                raise RuntimeError(f"join refused: {reply}")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.pump)
                nursery.start_soon(client.heartbeat)
                await self.send({"type": "connect", "data": {"metadata": {"displayName": self.name}}})
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
            await participant.close()
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
