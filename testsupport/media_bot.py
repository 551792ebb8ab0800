"""A participant made of aiortc, speaking the media-event protocol like the browser client does.

The bot's aiortc runs on an asyncio thread of its own (the same bridge the
engine uses), its signalling goes over a real Phoenix socket, and its media
over real UDP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import uuid
from contextlib import asynccontextmanager

import numpy
import trio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from testsupport.asyncio_thread import AsyncioThread
from testsupport.phoenix import PhoenixClient, phoenix_client
from testsupport.wait import until
from videoroomd.media.webrtc.compat.ice import ice_connections, limit_host_addresses
from videoroomd.media.webrtc.compat.nack import send_nack



class Muted:
    """A transport that sends nothing (the loop's own transports cannot be patched)."""

    def __init__(self, transport):
        self._transport = transport

    def sendto(self, data, addr=None) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self._transport, name)

class Tone(MediaStreamTrack):
    """A 440 Hz tone, loud enough to count as speech (or silence when muted)."""

    kind = "audio"

    def __init__(self, loud: bool = True):
        super().__init__()
        self.loud = loud
        self._samples = 0
        self._start = None

    async def recv(self) -> AudioFrame:
        rate, count = 48000, 960
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._samples / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (numpy.arange(count) + self._samples) / rate
        amplitude = 12000 if self.loud else 0
        data = (amplitude * numpy.sin(2 * math.pi * 440 * t)).astype(numpy.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, rate)
        self._samples += count
        return frame


class Pattern(MediaStreamTrack):
    """A small moving picture at 15 frames per second."""

    kind = "video"

    def __init__(self):
        super().__init__()
        self._count = 0
        self._start = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._count / 15 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        image = numpy.zeros((120, 160, 3), numpy.uint8)
        image[:, (self._count * 4) % 160] = 255
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self._count * 6000
        frame.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        return frame


class Bot:
    """One participant: a Phoenix channel, an RTCPeerConnection, what it publishes and receives.

    The one aiortc participant of the tests and the benchmark: it answers the server as the
    browser client does (offerData: an offer with a receiver for each track; sdpAnswer: applied).
    What differs from one use to the next are the hooks: :meth:`_make_pc` (the connection, its
    ICE servers and what it publishes from the start), :meth:`_add_receiver` and
    :meth:`on_event` (the events a subclass reacts to itself). The aiortc objects are touched
    only on the media thread (``self.media.call``).
    """

    # The host candidates its offers carry (aiortc would offer every address of the machine);
    # empty: none at all, for a participant that reaches the server through TURN only.
    host_addresses: tuple[str, ...] = ("127.0.0.1",)
    event_timeout: float = 120.0  # seconds without a media event before the pump gives up
    closing_raises: bool = False  # whether a phx_close or phx_error ends the pump (ChannelClosed)

    def __init__(self, client: PhoenixClient | None, room: str | None, name: str, media: AsyncioThread):
        self.client = client
        self.room = room
        self.name = name
        self.media = media
        self.id: str | None = None
        self.events: list[dict] = []
        self.pc: RTCPeerConnection | None = None
        self.local: dict[str, MediaStreamTrack] = {}          # our track id -> track
        self.screens: set[str] = set()                         # our track ids published as a shared screen
        self.mid_to_track_id: dict[str, str] = {}
        self.received: dict[str, int] = {}                     # remote track id -> frames decoded
        self._readers: set = set()
        self._new_event = trio.Event()

    # -- signalling ------------------------------------------------------------------
    async def send(self, event: dict) -> None:
        await self.client.media_event(self.room, event)

    async def pump(self) -> None:
        """Read media events forever, answering offerData as the browser client would."""
        while True:
            event = await self.client.next_media_event(self.event_timeout, closing_raises=self.closing_raises)
            kind, data = event["type"], event.get("data")
            if kind == "custom":
                kind, data = data["type"], data.get("data")
            self.events.append({"type": kind, "data": data})
            self._new_event.set()
            self._new_event = trio.Event()
            await self.on_event(kind, data)

    async def on_event(self, kind: str, data) -> None:
        """Answer one media event (``custom`` ones unwrapped): offerData and sdpAnswer."""
        if kind == "offerData":
            await self._offer(data["tracksTypes"])
        elif kind == "sdpAnswer":
            self.mid_to_track_id = data["midToTrackId"]
            await self.media.call(self.pc.setRemoteDescription, RTCSessionDescription(data["sdp"], "answer"))

    async def wait_for(self, predicate, timeout: float = 20.0) -> dict:
        """The first media event (seen so far or later) for which ``predicate(event)`` holds."""
        with trio.fail_after(timeout):
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                await self._new_event.wait()

    async def connect(self) -> dict:
        await self.send({"type": "connect", "data": {"metadata": {"displayName": self.name}}})
        connected = await self.wait_for(lambda e: e["type"] == "connected")
        self.id = connected["data"]["id"]
        return connected["data"]

    # -- media ------------------------------------------------------------------------
    async def publish(self, audio: bool = True, video: bool = True, loud: bool = True,
                      screen: bool = False) -> list[str]:
        """Add tracks and renegotiate; returns their track ids. ``screen``: the video is a shared screen
        (its metadata says ``"type": "screen"``, as the page's)."""
        def add() -> list[str]:
            if self.pc is None:
                self._make_pc()
            ids = []
            for track in ([Tone(loud)] if audio else []) + ([Pattern()] if video else []):
                track_id = f"{self.id}:{uuid.uuid4()}"
                self.pc.addTransceiver(track, direction="sendonly")
                self.local[track_id] = track
                if screen and track.kind == "video":
                    self.screens.add(track_id)
                ids.append(track_id)
            return ids

        async def run_add():
            return add()

        ids = await self.media.call(run_add)
        await self.send({"type": "custom", "data": {"type": "renegotiateTracks"}})
        return ids

    def _make_pc(self) -> None:
        """Make ``self.pc`` (on the media thread), at the first publish or offerData."""
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @self.pc.on("track")
        def on_track(track):
            transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
            self._readers.add(asyncio.ensure_future(self._read(transceiver.mid, track)))

    async def _read(self, mid: str, track) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            track_id = self.mid_to_track_id.get(mid)
            if track_id is not None:
                self.received[track_id] = self.received.get(track_id, 0) + 1

    async def _offer(self, tracks_types: dict[str, int]) -> None:
        async def make_offer():
            if self.pc is None:
                self._make_pc()
            for kind in ("audio", "video"):
                have = sum(1 for t in self.pc.getTransceivers() if t.direction == "recvonly" and t.kind == kind)
                for _ in range(tracks_types.get(kind, 0) - have):
                    self._add_receiver(kind)
            if self.host_addresses:
                limit_host_addresses(self.pc, self.host_addresses)
            await self.pc.setLocalDescription(await self.pc.createOffer())
            sending = {}
            for transceiver in self.pc.getTransceivers():
                track = transceiver.sender.track
                if track is not None and transceiver.mid is not None:
                    sending[transceiver.mid] = next(i for i, t in self.local.items() if t is track)
            return self.pc.localDescription.sdp, sending

        sdp, sending = await self.media.call(make_offer)
        await self.send({"type": "custom", "data": {"type": "sdpOffer", "data": {
            "sdpOffer": {"type": "offer", "sdp": sdp},
            "trackIdToTrackMetadata": {t: {"name": self.name, **({"type": "screen"} if t in self.screens else {})}
                                       for t in sending.values()},
            "trackIdToTrackBitrates": {},
            "midToTrackId": sending,
        }}})

    def _add_receiver(self, kind: str):
        """A receive-only transceiver of ``kind`` for one more remote track (on the media thread)."""
        return self.pc.addTransceiver(kind, direction="recvonly")

    async def lose_incoming_video(self, count: int, every: int = 4) -> set[int]:
        """From now on, throw away the first copy of every ``every``-th video packet that
        arrives, ``count`` in all, as a lossy network would. Returns their sequence numbers
        (the set fills as packets arrive)."""
        def install() -> set[int]:
            transceiver = next(t for t in self.pc.getTransceivers() if t.kind == "video" and t.direction == "recvonly")
            video_payload_type = transceiver._codecs[0].payloadType
            dtls = transceiver.receiver.transport
            deliver = dtls._handle_rtp_data
            lost: set[int] = set()

            async def lossy(data: bytes, arrival_time_ms: int) -> None:
                if data[1] & 0x7F == video_payload_type and len(lost) < count:
                    seq = int.from_bytes(data[2:4], "big")
                    if seq % every == 0 and seq not in lost:
                        lost.add(seq)
                        return
                await deliver(data, arrival_time_ms)

            dtls._handle_rtp_data = lossy
            return lost

        async def run_install():
            return install()

        return await self.media.call(run_install)

    async def go_silent(self) -> None:
        """Send nothing more to the server (media, RTCP, ICE checks), as when a network
        goes away; the signalling socket stays open."""
        async def mute():
            for connection in ice_connections(self.pc):
                for protocol in connection._protocols:
                    if protocol.transport is not None:
                        protocol.transport = Muted(protocol.transport)

        await self.media.call(mute)

    async def video_repairs(self) -> tuple[set[int], int]:
        """(video sequence numbers still missing, retransmitted packets received)."""
        async def look():
            missing, retransmitted = set(), 0
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind != "video" or transceiver.direction != "recvonly":
                    continue
                receiver = transceiver.receiver
                missing |= receiver._RTCRtpReceiver__nack_generator.missing
                rtx = receiver._RTCRtpReceiver__rtx_ssrc  # retransmission SSRC -> media SSRC
                streams = receiver._RTCRtpReceiver__remote_streams
                retransmitted += sum(streams[ssrc].packets_received for ssrc in rtx if ssrc in streams)
            return missing, retransmitted

        return await self.media.call(look)

    async def frames_from(self, track_id: str, at_least: int, timeout: float = 20.0) -> int:
        """How many frames of ``track_id`` were decoded, once at least ``at_least``; AssertionError
        after ``timeout`` seconds."""
        return await until(lambda: self.received.get(track_id, 0) >= at_least and self.received[track_id],
                           timeout, f"{at_least} frames of {track_id}")

    async def close(self) -> None:
        async def close_pc():
            for reader in self._readers:
                reader.cancel()
            if self.pc is not None:
                await self.pc.close()

        await self.media.call(close_pc)


@asynccontextmanager
async def bot(daemon, name: str, room: str = "lobby", media: AsyncioThread | None = None, **join):
    """A connected bot in ``room``, its event pump running; closed on exit. ``join``: more join
    params (a password, an access token)."""
    async with phoenix_client(daemon) as client:
        reply = await client.join(room, displayName=name, **join)
        assert reply["status"] == "ok", reply
        participant = Bot(client, room, name, media)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(participant.pump)
                nursery.start_soon(client.heartbeat, 20)  # phoenix.js: every 30 s
                await participant.connect()
                try:
                    yield participant
                finally:
                    nursery.cancel_scope.cancel()  # stop answering before the connection goes away
        finally:
            with trio.move_on_after(5) as cleanup:
                cleanup.shield = True
                await participant.close()


@asynccontextmanager
async def media_thread():
    thread = AsyncioThread("bots")
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


async def nack_everything(participant: Bot, times: int) -> None:
    """Send ``times`` RTCP NACKs, each naming the last 1000 sequence numbers of the video
    the participant receives."""
    async def send():
        transceiver = next(t for t in participant.pc.getTransceivers() if t.kind == "video" and t.direction == "recvonly")
        receiver = transceiver.receiver
        rtx = set(receiver._RTCRtpReceiver__rtx_ssrc)
        (ssrc,) = [s for s in receiver._RTCRtpReceiver__remote_streams if s not in rtx]
        last = receiver._RTCRtpReceiver__remote_streams[ssrc].max_seq
        for _ in range(times):
            # In the order they went, across the wrap when it is near: aiortc's own packer raises on that.
            await send_nack(receiver, ssrc, [(last - n) % 65536 for n in range(1000)][::-1])

    await participant.media.call(send)
