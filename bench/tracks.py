"""A bot's media without codecs: tracks that hand out pre-encoded packets, receivers that only count.

Everything here runs on the bot's asyncio thread.

- :class:`ClipVideoTrack` / :class:`ClipAudioTrack` return ``av.Packet``s
  from a :class:`~bench.clip.Clip` in real time; ``RTCRtpSender`` packs
  them (``encoder.pack``) instead of encoding. A keyframe request (PLI/FIR)
  from the server makes the video track jump to a keyframe of the clip, as
  a browser's encoder would make one.
- :class:`ReceiveCounter` takes the place of a receiver's decoder queue:
  aiortc's jitter buffer still reassembles each frame, and the counter
  notes it (frames, keyframes, bytes, when the first came) instead of
  decoding. RTP packets (received, lost) are read from the receiver's
  own statistics.
- :class:`SenderWatch` counts what the server's RTCP says about what we send.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import (RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket,
                        RtcpSrPacket)

from .clip import AUDIO_FRAME, AUDIO_RATE, Clip

RTCP_PSFB_FIR = 4
AUDIO_LEVEL = -30  # dBov put in the RFC 6464 header extension, as a talking microphone would
VIDEO_CLOCK = 90000


class _PacedTrack(MediaStreamTrack):
    """Hands out one packet every ``interval`` seconds of wall time, from the first ``recv``."""

    def __init__(self, interval: float):
        super().__init__()
        self.interval = interval
        self.sent = 0
        self._start: float | None = None

    async def _pace(self) -> None:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self.sent * self.interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


class ClipVideoTrack(_PacedTrack):
    kind = "video"

    def __init__(self, clip: Clip):
        super().__init__(1 / clip.fps)
        self.clip = clip
        self.position = 0
        self.keyframe_wanted = False
        self._step = VIDEO_CLOCK // clip.fps

    def request_keyframe(self) -> None:
        self.keyframe_wanted = True

    async def recv(self) -> av.Packet:
        await self._pace()
        if self.keyframe_wanted and not self.clip.keyframe[self.position]:
            keys = [i for i, key in enumerate(self.clip.keyframe) if key]
            self.position = next((i for i in keys if i > self.position), keys[0])
        self.keyframe_wanted = False
        packet = av.Packet(self.clip.video[self.position])
        packet.pts = self.sent * self._step
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.position = (self.position + 1) % len(self.clip.video)
        self.sent += 1
        return packet


class ClipAudioTrack(_PacedTrack):
    kind = "audio"

    def __init__(self, clip: Clip):
        super().__init__(AUDIO_FRAME / AUDIO_RATE)
        self.clip = clip

    async def recv(self) -> av.Packet:
        await self._pace()
        packet = av.Packet(self.clip.audio[self.sent % len(self.clip.audio)])
        packet.pts = self.sent * AUDIO_FRAME
        packet.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.sent += 1
        return packet


class SenderWatch:
    """What the server says back about one of our senders: NACKs, keyframe requests, losses it reports.

    A keyframe request (PLI/FIR) is passed to a :class:`ClipVideoTrack`;
    aiortc itself ignores them for packets it only packs.
    """

    def __init__(self, sender, track):
        self.sender = sender
        self.nacked = 0          # packets the server asked again
        self.keyframe_requests = 0
        self.lost_at_server = 0  # cumulative loss in the server's last receiver report
        handle = sender._handle_rtcp_packet

        async def watch(packet):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.keyframe_requests += 1
                if isinstance(track, ClipVideoTrack):
                    track.request_keyframe()
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.nacked += len(packet.lost)
            elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        self.lost_at_server = report.packets_lost
            await handle(packet)

        sender._handle_rtcp_packet = watch

    def counts(self) -> dict:
        return {"packets": self.sender._RTCRtpSender__packet_count, "nacked": self.nacked,
                "keyframe_requests": self.keyframe_requests, "lost_at_server": self.lost_at_server}


def send_audio_level(sender) -> None:
    """Put an audio level on every packet ``sender`` sends (aiortc computes one only when it encodes)."""
    next_frame = sender._next_encoded_frame

    async def with_level(codec):
        frame = await next_frame(codec)
        if frame is not None:
            frame.audio_level = AUDIO_LEVEL
        return frame

    sender._next_encoded_frame = with_level


class ReceiveCounter:
    """Stands in for a receiver's decoder queue; aiortc's decoder thread gets ``None`` and ends."""

    def __init__(self, receiver, kind: str):
        self.receiver = receiver
        self.kind = kind
        self.frames = 0
        self.keyframes = 0
        self.bytes = 0
        self.first: float | None = None
        self.first_keyframe: float | None = None
        receiver._RTCRtpReceiver__decoder_queue = self

    def get(self):
        return None  # the decoder thread ends: nothing is decoded

    def put(self, item) -> None:
        """A complete encoded frame from the jitter buffer, as (codec, frame)."""
        if item is not None:
            self.on_frame(item[1].data)

    def on_frame(self, data: bytes) -> None:
        now = time.monotonic()
        self.frames += 1
        self.bytes += len(data)
        if self.first is None:
            self.first = now
        if self.kind == "video" and data and not data[0] & 0x01:  # VP8 frame tag: P=0 on a key frame
            self.keyframes += 1
            if self.first_keyframe is None:
                self.first_keyframe = now

    def counts(self) -> dict:
        streams = self.receiver._RTCRtpReceiver__remote_streams.values()  # one per SSRC (media, RTX)
        return {"kind": self.kind, "packets": sum(s.packets_received for s in streams),
                "lost": sum(s.packets_lost for s in streams), "frames": self.frames, "keyframes": self.keyframes,
                "jitter_ms": max((s.jitter / s._clockrate * 1000 for s in streams), default=None),
                "bytes": self.bytes, "first": self.first, "first_keyframe": self.first_keyframe}
