"""The export of a recorded meeting: ``python -m bench.recording_export [--people 3] [--minutes 5] [--profile]``.

The recording is made without waiting for it: each person's camera and
microphone are the bench clip's packets (:mod:`bench.clip`: VP8 320x240 at
30 fps, Opus 20 ms), packetized as a browser does (VP8 payload descriptor,
at most 1200 bytes a packet) and written with the recorder's own
:class:`~videoroomd.recording.trackfile.TrackEncoder` into track files whose
RTP timestamps and arrival times cover ``--minutes`` minutes (the clip
looped, its picture ids and timestamps going on), with a sender report every
second, people joining 0.5 s apart. Then, in this process and one after the
other, what the daemon's export job does: the per-participant remux
(:func:`~videoroomd.recording.export.export_recording`) and the meeting file
(:func:`~videoroomd.recording.export_job.compose_meeting`). Prints the wall
and CPU time of each, the recording's bytes a minute a person beside its
media's bitrate, and the machine's load average. ``--profile``: the
composite's functions by CPU time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from aiortc.codecs.vpx import Vp8Encoder

from bench import clip as clips
from videoroomd.recording.trackfile import TrackHeader
from videoroomd.recording.writer import TrackWriter

VIDEO_PT, AUDIO_PT = 96, 111


def _ntp(wall: float) -> int:
    seconds = wall + 2_208_988_800
    return (int(seconds) << 32) | int((seconds % 1) * 2 ** 32)


def write_person(directory: Path, person: int, clip: clips.Clip, start: float, seconds: float) -> int:
    """Person ``person``'s two track files, ``seconds`` long from wall time ``start``; returns their bytes."""
    endpoint = f"p{person}"
    total = 0
    for kind in ("video", "audio"):
        rate = 90000 if kind == "video" else 48000
        header = TrackHeader(kind, "vp8" if kind == "video" else "opus", rate, endpoint, f"{endpoint}-{kind}", start)
        writer = TrackWriter(directory / f"{endpoint}.{endpoint}-{kind}.vrtrack", header)
        ssrc, sequence, encoder = 1000 + person * 2 + (kind == "audio"), 0, writer.encoder
        step = 1 / clip.fps if kind == "video" else 0.02
        items = clip.video if kind == "video" else clip.audio
        next_report = 0.0
        for index in range(int(seconds / step)):
            t = index * step
            timestamp = round(t * rate) & 0xFFFFFFFF
            wall = start + t + 0.01
            data = items[index % len(items)]
            if index % len(items) == 0 and kind == "video" and index:
                data = items[0]  # the loop starts again on the clip's key frame
            payloads = Vp8Encoder._packetize(data, index & 0x7FFF) if kind == "video" else [data]
            for number, payload in enumerate(payloads):
                writer.append(encoder.rtp(wall, number == len(payloads) - 1, VIDEO_PT if kind == "video" else AUDIO_PT,
                                          sequence & 0xFFFF, timestamp, ssrc, payload))
                sequence += 1
            if t >= next_report:
                writer.append(encoder.sender_report(wall, ssrc, _ntp(start + t), timestamp))
                next_report += 1.0
            if writer.pending > 1 << 20:
                writer.flush()
        writer.flush()
        total += writer.written
        writer.close()
    return total


def timed(step):
    """(result, wall seconds, CPU seconds of this process) of ``step()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str]) -> int:
    from videoroomd.recording.export import export_recording
    from videoroomd.recording.export_job import compose_meeting

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--profile", action="store_true", help="profile the composite (slows it down)")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    clip = clips.make(320, 240, 30, 10.0, 400, 32, gop_seconds=2.0)
    directory = Path(tempfile.mkdtemp(prefix="videoroomd-export-bench-"))
    start = time.time() - seconds - 10
    sizes = [write_person(directory, person, clip, start + person * 0.5, seconds - person * 0.5)
             for person in range(args.people)]
    media_kbps = clip.video_kbps + clip.audio_kbps
    per_minute = sum(size / ((seconds - p * 0.5) / 60) for p, size in enumerate(sizes)) / len(sizes)
    print(f"recording: {args.people} people, {args.minutes:g} min, {clip.describe()}")
    print(f"track files: {per_minute / 1e6:.2f} MB a minute a person; the media: {media_kbps * 60 / 8 / 1e3:.2f} MB a minute "
          f"({per_minute * 8 / 60 / 1e3 / media_kbps:.3f} x)")
    made, wall, cpu = timed(lambda: export_recording(directory))
    print(f"remux ({len(made)} files): {wall:.1f} s wall, {cpu:.1f} s CPU")
    profile = cProfile.Profile() if args.profile else None
    if profile:
        profile.enable()
    meeting, wall, cpu = timed(lambda: compose_meeting(made))
    if profile:
        profile.disable()
    print(f"meeting ({meeting.stat().st_size / 1e6:.1f} MB): {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"for {seconds:.0f} s of meeting ({seconds / wall:.2f} x real time by the wall clock)")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; in {directory}")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
