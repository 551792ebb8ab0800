"""The meeting in one file: every camera in a grid, the speaker marked, a screen share on the stage, all audio mixed.

Made from the per-participant WebM files of :mod:`.export` (decoded once,
streamed: one frame of each input held at a time), encoded once as VP8 +
Opus, 1280x720 at ``FPS`` frames a second (libvpx ``ENCODER``, one thread,
``BITRATE``; Opus at 48 kHz mono), composed in YUV 4:2:0 as the encoder
takes it: each camera frame scaled once, straight into its tile's planes. Times are the exported
files' own: each starts at 0 when its participant's recording started, and
the files are placed by the participants' first packet's wall time (the
track headers' ``start`` plus the first arrival), so that who joined later
appears later.

Layout: no screen shared at that moment: a grid of the cameras (columns:
ceil(sqrt(n))), each kept in proportion inside its tile. A screen shared:
the screen on the stage (the left 960x720) and the cameras in a column on
the right. The speaker (the loudest participant whose audio is over
``SPEAKING_RMS`` in that frame's 1/FPS s) gets a coloured border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy

WIDTH, HEIGHT = 1280, 720
FPS = 15
BITRATE = 1_500_000
SPEAKING_RMS = 0.02                    # of full scale: quieter is not speech
BORDER = 6                             # pixels of the speaker's mark
MARK = numpy.array([46, 204, 113], dtype=numpy.uint8)
RATE = 48000
OUTPUT = "meeting.webm"
# libvpx's fastest realtime settings: on the bench's meeting pictures they take about half the CPU of
# cpu-used=8 for 0.7 dB less PSNR (near 45 dB) and 1.5 % more bytes (docs/benchmarks.md)
ENCODER = {"deadline": "realtime", "cpu-used": "16", "static-thresh": "100"}


@dataclass
class _Input:
    """One participant's exported file: its video decoded as needed, its audio whole."""

    path: Path
    offset: float                         # seconds from the meeting's start to this file's 0
    screen: bool = False
    audio: numpy.ndarray | None = None    # mono float32 at RATE, from the meeting's start
    _frames: Iterator | None = None
    _next: tuple[float, object] | None = None
    current: object = None                # the last video frame at or before the time asked
    last_time: float = -1.0
    done: bool = False
    container: object = None
    extra: dict = field(default_factory=dict)

    def open(self) -> None:
        import av

        self.container = av.open(str(self.path))
        if self.container.streams.video:
            stream = self.container.streams.video[0]
            self._frames = ((float(f.pts * f.time_base) + self.offset, f) for f in self.container.decode(stream))
        else:
            self.done = True

    def frame_at(self, t: float):
        """The frame shown at meeting time ``t`` (None before the first, or once the file ended)."""
        while not self.done:
            if self._next is None:
                try:
                    self._next = next(self._frames)
                except (StopIteration, Exception):  # a damaged frame ends this input, not the meeting
                    self.done = True
                    break
            if self._next[0] > t:
                break
            self.last_time, self.current = self._next
            self._next = None
        if self.done and t - self.last_time > 1.0:
            return None  # the participant left (or stopped its camera): its tile shows nothing
        return self.current


def _audio(path: Path, offset: float, total: int) -> numpy.ndarray:
    """The file's audio as mono float32 at RATE, placed at ``offset`` in a buffer of ``total`` samples."""
    import av

    out = numpy.zeros(total, dtype=numpy.float32)
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return out
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(container.streams.audio[0]):
            start = int(round((float(frame.pts * frame.time_base) + offset) * RATE)) if frame.pts is not None else 0
            for converted in resampler.resample(frame):
                samples = converted.to_ndarray().reshape(-1)
                end = min(total, start + len(samples))
                if 0 <= start < end:
                    out[start:end] += samples[:end - start]
                start += len(samples)
    return out


def _yuv(rgb: numpy.ndarray) -> tuple[int, int, int]:
    """``rgb`` as the encoder's YUV (BT.601, limited range: what swscale makes of RGB by default)."""
    r, g, b = (float(c) for c in rgb)
    return (round(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255),
            round(128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255),
            round(128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255))


BLACK = (16, 128, 128)                 # YUV of RGB black
MARK_YUV = _yuv(MARK)


class _Canvas:
    """One 1280x720 yuv420p picture as a numpy buffer: the Y, U and V planes are views of it, so that
    the whole goes to the encoder in one copy."""

    def __init__(self) -> None:
        size = WIDTH * HEIGHT
        self.buffer = numpy.empty(size * 3 // 2, dtype=numpy.uint8)
        self.planes = (self.buffer[:size].reshape(HEIGHT, WIDTH),
                       self.buffer[size:size * 5 // 4].reshape(HEIGHT // 2, WIDTH // 2),
                       self.buffer[size * 5 // 4:].reshape(HEIGHT // 2, WIDTH // 2))

    def clear(self) -> None:
        for plane, value in zip(self.planes, BLACK):
            plane.fill(value)

    def fill(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        """The rectangle (even ``x``, ``y``, ``w``, ``h``) in ``color`` (YUV)."""
        self.planes[0][y:y + h, x:x + w] = color[0]
        for plane, value in zip(self.planes[1:], color[1:]):
            plane[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = value

    def paste(self, x: int, y: int, w: int, h: int, frame) -> None:
        """``frame`` fitted into the tile (even ``x``, ``y``, ``w``, ``h``), in proportion, centred."""
        tile = _fit(frame, w, h)
        th, tw = tile[0].shape
        x, y = x + (w - tw) // 2 // 2 * 2, y + (h - th) // 2 // 2 * 2
        self.planes[0][y:y + th, x:x + tw] = tile[0]
        for plane, part in zip(self.planes[1:], tile[1:]):
            plane[y // 2:y // 2 + th // 2, x // 2:x // 2 + tw // 2] = part

    def video_frame(self):
        import av

        return av.VideoFrame.from_ndarray(self.buffer.reshape(HEIGHT * 3 // 2, WIDTH), format="yuv420p")

    def rgb(self) -> numpy.ndarray:
        return self.video_frame().to_ndarray(format="rgb24")


_FITTED: dict[tuple[int, int, int], tuple[object, tuple]] = {}  # the last of each size: a frame shown again


def _fit(frame, width: int, height: int) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """``frame`` scaled in proportion to fit ``width`` x ``height``: its Y, U and V planes (each of even
    size); a frame shown again (its input has no newer one yet) is not scaled again."""
    kept = _FITTED.get((id(frame), width, height))
    if kept is not None and kept[0] is frame:
        return kept[1]
    if len(_FITTED) > 64:
        _FITTED.clear()
    planes = _scaled(frame, width, height)
    _FITTED[(id(frame), width, height)] = (frame, planes)
    return planes


def _scaled(frame, width: int, height: int) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    scale = min(width / frame.width, height / frame.height)
    w, h = max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2)
    # bilinear: a quarter less CPU than the default bicubic, no visible loss for a camera scaled about 2x
    flat = frame.reformat(width=w, height=h, format="yuv420p", interpolation="BILINEAR").to_ndarray()  # Y, U, V rows
    y = flat[:h]
    chroma = flat[h:].reshape(-1)
    return y, chroma[:w * h // 4].reshape(h // 2, w // 2), chroma[w * h // 4:].reshape(h // 2, w // 2)


def _grid(count: int, area: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """``count`` tiles (x, y, w, h) filling ``area`` (x, y, w, h) in a grid."""
    x0, y0, width, height = area
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    w, h = width // cols // 2 * 2, height // rows // 2 * 2
    return [(x0 + (i % cols) * w, y0 + (i // cols) * h, w, h) for i in range(count)]


def compose_frame(cameras: list, screen, speaker: int | None) -> numpy.ndarray:
    """One picture of the meeting (RGB, HEIGHT x WIDTH): ``cameras`` frames (None: an empty tile),
    ``screen`` on the stage when not None, ``speaker`` the index of the camera to mark."""
    canvas = _Canvas()
    _draw(canvas, cameras, screen, speaker)
    return canvas.rgb()


def _draw(canvas: _Canvas, cameras: list, screen, speaker: int | None) -> None:
    """The meeting's picture drawn on ``canvas`` (YUV 4:2:0: no conversion of the whole picture)."""
    canvas.clear()
    if screen is not None:
        canvas.paste(0, 0, 960, HEIGHT, screen)
        tiles = _grid(len(cameras), (960, 0, 320, HEIGHT)) if len(cameras) <= 1 else \
            [(960, i * (HEIGHT // len(cameras)) // 2 * 2, 320, HEIGHT // len(cameras) // 2 * 2)
             for i in range(len(cameras))]
    else:
        tiles = _grid(len(cameras), (0, 0, WIDTH, HEIGHT))
    for index, (frame, (x, y, w, h)) in enumerate(zip(cameras, tiles)):
        if frame is not None:
            canvas.paste(x, y, w, h, frame)
        if index == speaker:
            for region in ((x, y, w, BORDER), (x, y + h - BORDER, w, BORDER),
                           (x, y, BORDER, h), (x + w - BORDER, y, BORDER, h)):
                canvas.fill(*region, MARK_YUV)


def _speaker(audios: list[numpy.ndarray | None], start: int, end: int) -> int | None:
    best, loudest = None, SPEAKING_RMS
    for index, audio in enumerate(audios):
        if audio is None or start >= len(audio):
            continue
        window = audio[start:end]
        rms = float(numpy.sqrt(numpy.mean(window * window))) if len(window) else 0.0
        if rms > loudest:
            best, loudest = index, rms
    return best


def compose(inputs: list[tuple[Path, float, bool]], output: Path,
            progress: Callable[[float, float], None] = lambda done, total: None) -> float:
    """Compose ``inputs`` ((WebM path, its start in meeting seconds, whether it is a screen)) into
    ``output``; returns the meeting's duration in seconds."""
    import av

    sources = [_Input(path, offset, screen) for path, offset, screen in inputs]
    duration = 0.0
    for source in sources:
        with av.open(str(source.path)) as container:
            duration = max(duration, source.offset + (container.duration or 0) / 1e6)
    total = int(duration * RATE) + RATE // FPS
    cameras = [s for s in sources if not s.screen]
    for source in cameras:
        source.audio = _audio(source.path, source.offset, total)
    mixed = numpy.clip(sum((s.audio for s in cameras), numpy.zeros(total, numpy.float32)), -1.0, 1.0)
    for source in sources:
        source.open()
    temporary = output.with_name(output.name + ".part")
    with av.open(str(temporary), "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=FPS, options=ENCODER)
        video.codec_context.thread_count = 1  # a second thread cost more CPU than it saved wall time (benchmarks.md)
        video.width, video.height, video.pix_fmt, video.bit_rate = WIDTH, HEIGHT, "yuv420p", BITRATE
        audio = container.add_stream("libopus", rate=RATE, layout="mono")
        count = int(duration * FPS) + 1
        step = RATE // FPS
        frame_size = 960
        pcm = (mixed * 32767).astype(numpy.int16)
        canvas = _Canvas()
        sent = 0  # samples of the mix encoded so far: kept in step with the video, for the muxer
        for index in range(count):
            t = index / FPS
            screens = [f for f in (s.frame_at(t) for s in sources if s.screen) if f is not None]
            frames = [s.frame_at(t) for s in cameras]
            speaker = _speaker([s.audio for s in cameras], index * step, (index + 1) * step)
            _draw(canvas, frames, screens[0] if screens else None, speaker)
            picture = canvas.video_frame()
            picture.pts, picture.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(picture))
            while sent < min(len(pcm), (index + 1) * step):
                container.mux(audio.encode(_pcm_frame(pcm, sent, frame_size)))
                sent += frame_size
            if index % FPS == 0:
                progress(t, duration)
        container.mux(video.encode(None))
        while sent < len(pcm):
            container.mux(audio.encode(_pcm_frame(pcm, sent, frame_size)))
            sent += frame_size
        container.mux(audio.encode(None))
    for source in sources:
        if source.container is not None:
            source.container.close()
    temporary.replace(output)
    return duration


def _pcm_frame(pcm: numpy.ndarray, start: int, size: int):
    import av

    chunk = pcm[start:start + size]
    if len(chunk) < size:
        chunk = numpy.pad(chunk, (0, size - len(chunk)))
    frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
    return frame
