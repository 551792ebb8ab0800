"""The meeting in one file: every camera in a grid, the speaker marked, a screen share on the stage, all audio mixed.

Made from the per-participant WebM files of :mod:`.export` (decoded once,
streamed: one frame of each input held at a time), encoded once as VP8 +
Opus, 1280x720 at ``FPS`` frames a second (libvpx ``deadline=realtime``,
``cpu-used=8``, ``BITRATE``; Opus at 48 kHz mono). Times are the exported
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


_FITTED: dict[tuple[int, int, int], tuple[object, numpy.ndarray]] = {}  # the last of each size: a frame shown again


def _fit(frame, width: int, height: int) -> numpy.ndarray:
    """``frame`` scaled to fit ``width`` x ``height``, in proportion, centred on black (RGB); a frame
    shown again (its input has no newer one yet) is not scaled again."""
    kept = _FITTED.get((id(frame), width, height))
    if kept is not None and kept[0] is frame:
        return kept[1]
    if len(_FITTED) > 64:
        _FITTED.clear()
    tile = _scaled(frame, width, height)
    _FITTED[(id(frame), width, height)] = (frame, tile)
    return tile


def _scaled(frame, width: int, height: int) -> numpy.ndarray:
    scale = min(width / frame.width, height / frame.height)
    w, h = max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2)
    picture = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    tile = numpy.zeros((height, width, 3), dtype=numpy.uint8)
    y, x = (height - h) // 2, (width - w) // 2
    tile[y:y + h, x:x + w] = picture
    return tile


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
    canvas = numpy.zeros((HEIGHT, WIDTH, 3), dtype=numpy.uint8)
    if screen is not None:
        canvas[:, :960] = _fit(screen, 960, HEIGHT)
        tiles = _grid(len(cameras), (960, 0, 320, HEIGHT)) if len(cameras) <= 1 else \
            [(960, i * (HEIGHT // len(cameras)), 320, HEIGHT // len(cameras) // 2 * 2) for i in range(len(cameras))]
    else:
        tiles = _grid(len(cameras), (0, 0, WIDTH, HEIGHT))
    for index, (frame, (x, y, w, h)) in enumerate(zip(cameras, tiles)):
        if frame is not None:
            canvas[y:y + h, x:x + w] = _fit(frame, w, h)
        if index == speaker:
            for region in (canvas[y:y + BORDER, x:x + w], canvas[y + h - BORDER:y + h, x:x + w],
                           canvas[y:y + h, x:x + BORDER], canvas[y:y + h, x + w - BORDER:x + w]):
                region[:] = MARK
    return canvas


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
        video = container.add_stream("libvpx", rate=FPS, options={"deadline": "realtime", "cpu-used": "8"})
        video.width, video.height, video.pix_fmt, video.bit_rate = WIDTH, HEIGHT, "yuv420p", BITRATE
        audio = container.add_stream("libopus", rate=RATE, layout="mono")
        count = int(duration * FPS) + 1
        step = RATE // FPS
        frame_size = 960
        pcm = (mixed * 32767).astype(numpy.int16)
        sent = 0  # samples of the mix encoded so far: kept in step with the video, for the muxer
        for index in range(count):
            t = index / FPS
            screens = [f for f in (s.frame_at(t) for s in sources if s.screen) if f is not None]
            frames = [s.frame_at(t) for s in cameras]
            speaker = _speaker([s.audio for s in cameras], index * step, (index + 1) * step)
            picture = av.VideoFrame.from_ndarray(compose_frame(frames, screens[0] if screens else None, speaker),
                                                 format="rgb24").reformat(format="yuv420p")
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
