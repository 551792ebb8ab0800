"""The media every benchmark participant sends: a VP8 clip and an Opus clip, encoded once.

Encoding is done here, before any participant starts, so that publishing
costs a bot almost nothing: its tracks hand out these packets in a loop
(see :mod:`bench.tracks`). The picture moves and carries some noise, so the
encoder spends its bitrate the way it would on a camera.
"""

from __future__ import annotations

import fractions
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import av
import numpy

AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms


@dataclass
class Clip:
    fps: int
    width: int
    height: int
    video: list[bytes]       # one encoded VP8 frame per picture
    keyframe: list[bool]     # whether video[i] is a keyframe
    audio: list[bytes]       # one 20 ms Opus packet each

    @property
    def video_kbps(self) -> float:
        return sum(map(len, self.video)) * 8 / (len(self.video) / self.fps) / 1000

    @property
    def audio_kbps(self) -> float:
        return sum(map(len, self.audio)) * 8 / (len(self.audio) * AUDIO_FRAME / AUDIO_RATE) / 1000

    def describe(self) -> str:
        keys = sum(self.keyframe)
        return (f"VP8 {self.width}x{self.height} at {self.fps} fps, {len(self.video) / self.fps:.0f} s looped, "
                f"{keys} keyframes, {self.video_kbps:.0f} kbit/s; Opus mono 48 kHz 20 ms, {self.audio_kbps:.0f} kbit/s")


def _pictures(width: int, height: int, count: int):
    rng = numpy.random.default_rng(7)
    y, x = numpy.mgrid[0:height, 0:width]
    box = max(8, height // 4)
    for i in range(count):
        image = numpy.empty((height, width, 3), numpy.uint8)
        image[..., 0] = (x + 3 * i) % 256
        image[..., 1] = (y + 2 * i) % 256
        image[..., 2] = ((x + y) // 2 + 5 * i) % 256
        left = (i * 4) % (width - box)
        top = int((height - box) / 2 * (1 + math.sin(i / 10)))
        image[top:top + box, left:left + box] = rng.integers(0, 256, (box, box, 3), numpy.uint8)
        yield av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def encode_video(width: int, height: int, fps: int, seconds: float, kbps: int, gop_seconds: float):
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps)
    codec.bit_rate = kbps * 1000
    codec.gop_size = max(1, round(fps * gop_seconds))
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    packets = []
    for index, frame in enumerate(_pictures(width, height, round(fps * seconds))):
        frame.pts = index
        packets += codec.encode(frame)
    packets += codec.encode(None)
    return [bytes(p) for p in packets], [p.is_keyframe for p in packets]


def encode_audio(seconds: float, kbps: int) -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_RATE, "mono", "s16"
    codec.bit_rate = kbps * 1000
    rng = numpy.random.default_rng(11)
    packets = []
    count = round(seconds * AUDIO_RATE / AUDIO_FRAME)
    for index in range(count):
        t = (numpy.arange(AUDIO_FRAME) + index * AUDIO_FRAME) / AUDIO_RATE
        wave = 8000 * numpy.sin(2 * math.pi * (220 + 40 * math.sin(index / 25)) * t) + rng.normal(0, 800, AUDIO_FRAME)
        frame = av.AudioFrame.from_ndarray(wave.astype(numpy.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_FRAME
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        packets += codec.encode(frame)
    packets += codec.encode(None)
    return [bytes(p) for p in packets]


def make(width: int = 320, height: int = 240, fps: int = 30, seconds: float = 4.0, video_kbps: int = 400,
         audio_kbps: int = 32, gop_seconds: float = 2.0) -> Clip:
    video, keyframe = encode_video(width, height, fps, seconds, video_kbps, gop_seconds)
    if not keyframe or not keyframe[0]:
        raise RuntimeError("the VP8 encoder did not start with a keyframe")
    return Clip(fps, width, height, video, keyframe, encode_audio(seconds, audio_kbps))


def save(clip: Clip, path: Path) -> None:
    path.write_bytes(pickle.dumps(clip))


def load(path: Path) -> Clip:
    clip = pickle.loads(Path(path).read_bytes())
    if not isinstance(clip, Clip):
        raise TypeError(f"{path} holds no clip")
    return clip
