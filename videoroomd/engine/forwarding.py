"""Encoded media from one publisher to many subscribers, never decoded (asyncio side).

A publisher's receiver gets a :class:`PassThroughDecoder` in place of its
decoder queue: aiortc's jitter buffer still reassembles frames, and each
complete encoded frame is cut into RTP payloads once (:class:`Prepacked`) and
queued for every subscriber's :class:`ForwardedTrack`; each subscriber's
``RTCRtpSender`` sends those payloads through a :class:`PrepackedEncoder`
instead of encoding. Each subscriber has a bounded queue; one that falls
behind drops what it has and waits for the next keyframe, which is asked of
the publisher (RTCP PLI, rate-limited).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

VIDEO_QUEUE = 30      # frames a subscriber may lag behind before it skips to a keyframe
AUDIO_QUEUE = 50      # 1 s of 20 ms Opus frames
KEYFRAME_INTERVAL = 0.5  # seconds between two keyframe requests to one publisher
RTCP_PSFB_FIR = 4


@dataclass(frozen=True)
class Prepacked:
    """One frame, already cut into RTP payloads: made once, sent to every subscriber."""

    payloads: list[bytes]
    timestamp: int  # in the codec's clock (90 kHz video, 48 kHz Opus)


class PrepackedEncoder:
    """Stands in for a sender's encoder: the payloads are ready, nothing to encode or cut."""

    def pack(self, frame: Prepacked) -> tuple[list[bytes], int]:
        return frame.payloads, frame.timestamp


def is_vp8_keyframe(data: bytes) -> bool:
    """VP8 frame tag (RFC 6386 section 9.1): bit 0 of the first byte is 0 on a key frame."""
    return len(data) > 2 and (data[0] & 0x01) == 0


class ForwardedTrack(MediaStreamTrack):
    """What one receive slot of a subscriber carries: encoded packets of its current source, in order.

    It lives as long as the slot: when the slot is freed or given another
    track, only its source switches. Stopping it would end the sender's RTP
    loop for good (aiortc's sender stops on MediaStreamError), and the slot
    could never carry anything again.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.source: PublishedTrack | None = None
        self._queue: asyncio.Queue = asyncio.Queue(VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE)
        self.waiting_for_keyframe = kind == "video"
        self.dropped = 0

    def switch(self, source: "PublishedTrack | None") -> None:
        """Carry ``source`` from now on (None: nothing), starting at its next keyframe."""
        if self.source is source:
            return
        if self.source is not None:
            self.source.subscribers.discard(self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self.source = source
        self.waiting_for_keyframe = self.kind == "video"
        if source is not None:
            source.subscribers.add(self)
            source.request_keyframe()

    def push(self, packet: Prepacked, keyframe: bool) -> None:
        if self.readyState != "live":
            return
        if self.waiting_for_keyframe:
            if not keyframe:
                if self.source is not None:
                    self.source.request_keyframe()  # rate-limited; covers a request that got lost
                return
            self.waiting_for_keyframe = False
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            # Behind: throw away what is queued and start again at the next keyframe.
            self.dropped += self._queue.qsize() + 1
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video" and self.source is not None:
                self.waiting_for_keyframe = True
                self.source.request_keyframe()

    async def recv(self) -> Prepacked:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        """The slot is gone (its connection closes)."""
        if self.readyState == "live":
            self.switch(None)
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                self._queue.get_nowait()
                self._queue.put_nowait(None)
        super().stop()


class PublishedTrack:
    """One incoming track and its subscribers."""

    def __init__(self, track_id: str, kind: str, receiver, on_audio_level: Callable[[int], None] | None = None):
        self.track_id = track_id
        self.kind = kind
        self.receiver = receiver
        self.subscribers: set[ForwardedTrack] = set()
        self.frames = 0
        self._last_keyframe_request = 0.0
        self._tasks: set[asyncio.Task] = set()
        self._on_audio_level = on_audio_level
        self._picture_id = 0

    def on_frame(self, data: bytes, timestamp: int) -> None:
        """A complete encoded frame arrived (called by the pass-through decoder)."""
        self.frames += 1
        if not self.subscribers:
            return
        if self.kind == "video":
            keyframe = is_vp8_keyframe(data)
            frame = Prepacked(Vp8Encoder._packetize(data, self._picture_id), timestamp)
            self._picture_id = (self._picture_id + 1) % (1 << 15)
        else:
            keyframe = True
            frame = Prepacked([data], timestamp)
        for subscriber in list(self.subscribers):
            subscriber.push(frame, keyframe)

    def on_audio_level(self, level: int) -> None:
        if self._on_audio_level is not None:
            self._on_audio_level(level)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (RTCP PLI), at most every KEYFRAME_INTERVAL seconds."""
        if self.kind != "video":
            return
        now = time.monotonic()
        if now - self._last_keyframe_request < KEYFRAME_INTERVAL:
            return
        ssrc = media_ssrc(self.receiver)
        if ssrc is None:
            return  # nothing received yet: the first frames will come with a keyframe anyway
        self._last_keyframe_request = now
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.switch(None)  # the slot stays, empty, until its next negotiation
        for task in self._tasks:
            task.cancel()


def media_ssrc(receiver) -> int | None:
    """The SSRC the publisher sends media on (not its retransmission stream), once seen."""
    retransmission = receiver._RTCRtpReceiver__rtx_ssrc  # rtx ssrc -> media ssrc
    for source in receiver.getSynchronizationSources():
        if source.source not in retransmission:
            return source.source
    return None


class PassThroughDecoder:
    """Stands in for a receiver's decoder queue: hands encoded frames on instead of decoding them.

    aiortc's decoder thread reads ``get()``; answering ``None`` ends it at
    once, so no decoder ever runs for a forwarded track.
    """

    def __init__(self, on_frame: Callable[[bytes, int], None]):
        self.on_frame = on_frame  # (encoded frame, timestamp in the codec's clock)

    def get(self):
        return None

    def put(self, item) -> None:
        if item is None:
            return
        _codec, frame = item
        self.on_frame(frame.data, frame.timestamp)


def attach_publisher(receiver, published: PublishedTrack) -> None:
    """Make ``receiver`` (of one of our own connections) forward instead of decode."""
    receiver._RTCRtpReceiver__decoder_queue = PassThroughDecoder(published.on_frame)
    if published.kind == "audio":
        handle = receiver._handle_rtp_packet

        async def handle_with_level(packet, arrival_time_ms):
            level = packet.extensions.audio_level
            if level is not None:
                published.on_audio_level(level[1])
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle_with_level


def attach_subscriber(sender, track: ForwardedTrack) -> None:
    """Make ``sender`` send the prepacked frames of ``track`` as they are, and pass its
    subscriber's PLI/FIR on to the publisher."""
    sender._RTCRtpSender__encoder = PrepackedEncoder()
    handle = sender._handle_rtcp_packet

    async def handle_with_keyframes(packet):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if track.source is not None:
                track.source.request_keyframe()
        await handle(packet)

    sender._handle_rtcp_packet = handle_with_keyframes
