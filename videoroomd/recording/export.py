"""A recording's tracks remuxed into one WebM per participant: VP8 and Opus packets as they came, not re-encoded.

For each participant: its audio track and its video tracks (the one with the
most frames goes with the audio; each other video track, a screen share,
gets a WebM of its own). Frames come from :mod:`.frames` (losses dropped,
every video starting on a key frame); tracks of one participant are aligned
by their publisher's sender reports when every one of them has some, else by
arrival time.

Time bases are fixed, 1/90000 for video and 1/48000 for audio, and every
packet carries its own: a stream's time base read back after the header is
written is the muxer's (1/1000 for WebM), and packets stamped with that made
a 3 s file claim 267 s.

Runs in a process of its own (``videoroomd recordings export``, or the
daemon's job after a recording stops), never in a worker's loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .frames import Frame, opus_frames, segments, sender_clock, vp8_frames, vp8_size
from .trackfile import Track, TrackFileError, read_track

__all__ = ["ExportError", "Exported", "export_recording"]

VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, 48000)
TRACK_SUFFIX = ".vrtrack"


class ExportError(Exception):
    """A recording that cannot be exported (no track file that reads); says which and why."""


@dataclass(frozen=True)
class Exported:
    path: Path
    participant: str
    duration: float      # seconds from the first frame to the last
    video_frames: int
    audio_frames: int
    start: float = 0.0   # wall time (Unix seconds) of the file's 0
    screen: bool = False  # a further video track of the participant (a screen share), without audio


def _frames(track: Track) -> list[Frame]:
    """The track's frames in the order they play, timed in wall seconds (its header's start plus the
    frame's time). A segment is timed from its first arrival and its RTP timestamps: the last frames
    of one can reach past the first of the next (a simulcast layer switch); those tail frames are
    dropped, since the next segment starts on a key frame that nothing before it may follow."""
    make = vp8_frames if track.header.kind == "video" else opus_frames
    out: list[Frame] = []
    for segment in segments(track.records):
        made = [Frame(track.header.start + f.time, f.data, f.keyframe) for f in make(segment, track.header.clock_rate)]
        while made and out and out[-1].time >= made[0].time:
            out.pop()
        out.extend(made)
    return out


MAX_SKEW = 1.0  # seconds a sender report may move a track from where its arrival puts it


def _offsets(tracks: list[Track]) -> list[float]:
    """Seconds to add to each track's timeline so that they are aligned (0 for the first): by the
    sender reports, where every track has one and none moves its track by more than MAX_SKEW
    (arrival times are off by the network's delay only: a larger move says the reports'
    clocks disagree, and arrival is the better guess)."""
    clocks = [sender_clock(track) for track in tracks]
    if any(clock is None for clock in clocks) or not clocks:
        return [0.0] * len(tracks)
    first = clocks[0][0] - clocks[0][1]
    offsets = [(ntp - timeline) - first for ntp, timeline in clocks]
    return offsets if all(abs(offset) <= MAX_SKEW for offset in offsets) else [0.0] * len(tracks)


def _mux(path: Path, video: list[Frame] | None, audio: list[Frame] | None) -> tuple[float, int, int]:
    """Write the WebM; frames' times are seconds from 0. Returns (duration, video frames, audio frames)."""
    import av  # only the export process loads it

    temporary = path.with_name(path.name + ".part")
    written = {"video": 0, "audio": 0}
    last = 0.0
    with av.open(str(temporary), "w", format="webm") as container:
        streams = {}
        if video:
            size = next((vp8_size(f.data) for f in video if f.keyframe), None) or (640, 480)
            streams["video"] = container.add_mux_stream("vp8", width=size[0], height=size[1])
            streams["video"].time_base = VIDEO_TB
        if audio:
            streams["audio"] = container.add_mux_stream("opus", rate=48000)
            streams["audio"].time_base = AUDIO_TB
        timed = [(f.time, "video", f) for f in video or ()] + [(f.time, "audio", f) for f in audio or ()]
        previous = {"video": -1, "audio": -1}
        need_key = False
        for time, kind, frame in sorted(timed, key=lambda item: item[0]):
            base = VIDEO_TB if kind == "video" else AUDIO_TB
            pts = round(time / base)
            if pts <= previous[kind] or (kind == "video" and need_key and not frame.keyframe):
                # a timestamp that went back (a clock jump): the frame is dropped, and a video
                # frame's followers until the next key frame (they would not decode without it)
                need_key = need_key or kind == "video"
                continue
            if kind == "video":
                need_key = False
            previous[kind] = pts
            packet = av.Packet(frame.data)
            packet.stream = streams[kind]
            packet.time_base = base    # fixed, never the stream's read back (see the module's note)
            packet.pts = packet.dts = pts
            packet.is_keyframe = frame.keyframe
            container.mux(packet)
            written[kind] += 1
            last = max(last, time)
    os.replace(temporary, path)
    return last, written["video"], written["audio"]


def _read_tracks(directory: Path) -> dict[str, list[Track]]:
    by_participant: dict[str, list[Track]] = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(TRACK_SUFFIX):
            continue
        try:
            track = read_track((directory / name).read_bytes())
        except (OSError, TrackFileError):
            continue  # a file cut inside its header holds nothing
        by_participant.setdefault(name.split(".", 1)[0], []).append(track)
    return by_participant


def export_recording(directory: Path, progress: Callable[[int, int], None] = lambda done, total: None) -> list[Exported]:
    """One WebM per participant (and per further video track) in ``directory``; returns what was
    written. Raises ExportError when no track reads. ``progress(done, total)`` after each file."""
    directory = Path(directory)
    by_participant = _read_tracks(directory)
    if not by_participant:
        raise ExportError(f"{directory}: no track file to export")
    jobs = []
    for participant, tracks in sorted(by_participant.items()):
        audios = sorted((t for t in tracks if t.header.kind == "audio"), key=lambda t: -len(t.records))
        videos = sorted((t for t in tracks if t.header.kind == "video"), key=lambda t: -len(t.records))
        jobs.append((f"{participant}.webm", participant, videos[:1], audios[:1]))
        for extra in videos[1:]:
            jobs.append((f"{participant}.{_file_id(extra)}.webm", participant, [extra], []))
    done: list[Exported] = []
    for index, (name, participant, videos, audios) in enumerate(jobs):
        chosen = videos + audios
        offsets = _offsets(chosen)
        framed = [[Frame(f.time + offset, f.data, f.keyframe) for f in _frames(track)]
                  for track, offset in zip(chosen, offsets)]
        starts = [frames[0].time for frames in framed if frames]
        if starts:
            origin = min(starts)
            video = [Frame(f.time - origin, f.data, f.keyframe) for f in framed[0]] if videos else None
            audio = [Frame(f.time - origin, f.data, True) for f in framed[-1]] if audios else None
            duration, video_count, audio_count = _mux(directory / name, video, audio)
            done.append(Exported(directory / name, participant, duration, video_count, audio_count, origin,
                                 screen=not audios))
        progress(index + 1, len(jobs))
    return done


def _file_id(track: Track) -> str:
    from .recorder import safe_id
    return safe_id(track.header.track)
