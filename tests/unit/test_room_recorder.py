"""A room's recorder in its worker: track files made of ids, the highest layer kept, keyframes asked, the quota."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from videoroomd.recording.recorder import RecordingError, RoomRecorder, safe_id
from videoroomd.recording.trackfile import read_track

KEY = bytes([0x10, 0x00, 0x9d, 0x01, 0x2a])     # VP8 descriptor S=1, then a key frame header
DELTA = bytes([0x10, 0x01, 0x00, 0x00])          # S=1, P=1: an inter frame


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _packet(ssrc: int, sequence: int, payload: bytes = DELTA, timestamp: int = 0):
    return SimpleNamespace(ssrc=ssrc, sequence_number=sequence, timestamp=timestamp, marker=1, payload_type=96,
                           payload=payload)


def _recorder(tmp_path, quota: int = 10 ** 9, **kwargs):
    asked, ended = [], []
    clock = Clock()
    recorder = RoomRecorder(str(tmp_path), "room1", "rec1", quota, lambda track, ssrc: asked.append((track, ssrc)),
                            lambda reason, detail: ended.append((reason, detail)), clock=clock, monotonic=clock,
                            **kwargs)
    return recorder, asked, ended, clock


def _read(recorder, track_id):
    recorder.flush()
    return read_track(recorder.tracks[track_id].writer.path.read_bytes())


def test_each_track_gets_its_own_file_under_ids_only(tmp_path):
    recorder, _, _, _ = _recorder(tmp_path)
    recorder.packet("cam", "video", "peer-a", None, _packet(1, 1, KEY))
    recorder.packet("../../etc/passwd", "audio", "peer/b", None, _packet(2, 1, b"opus"))
    recorder.end("stopped")
    names = sorted(p.name for p in (tmp_path / "room1" / "rec1").iterdir())
    assert "peer-a.cam.vrtrack" in names and len(names) == 2
    assert all("/" not in n and ".." not in n.split(".")[0] for n in names)
    assert all(p.resolve().is_relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert safe_id("../x") != "../x" and safe_id("ok_id-1") == "ok_id-1"


def test_the_highest_layer_sent_is_kept_and_a_lower_one_only_once_it_went_quiet(tmp_path):
    recorder, asked, _, clock = _recorder(tmp_path)
    recorder.packet("cam", "video", "p", 0, _packet(10, 1, KEY))   # low layer first
    recorder.packet("cam", "video", "p", 2, _packet(30, 1))        # high layer appears: taken, keyframe asked
    assert asked == [("cam", 30)]
    recorder.packet("cam", "video", "p", 0, _packet(10, 2, KEY))   # low again while high runs: dropped
    recorder.packet("cam", "video", "p", -2, _packet(40, 1, KEY))  # of no known layer: dropped
    recorder.packet("cam", "video", "p", 2, _packet(30, 2, KEY))
    clock.now += 2                                                  # the high layer stops (bandwidth)
    recorder.packet("cam", "video", "p", 1, _packet(20, 1, KEY))
    ssrcs = [(r.ssrc, r.sequence) for r in _read(recorder, "cam").packets]
    assert ssrcs == [(10, 1), (30, 1), (30, 2), (20, 1)]


def test_a_keyframe_is_asked_for_at_most_once_a_second_until_one_comes(tmp_path):
    recorder, asked, _, clock = _recorder(tmp_path)
    for i in range(10):
        recorder.packet("cam", "video", "p", None, _packet(5, i))
        clock.now += 0.25
    assert len(asked) == 3
    recorder.packet("cam", "video", "p", None, _packet(5, 11, KEY))
    clock.now += 5
    recorder.packet("cam", "video", "p", None, _packet(5, 12))
    assert len(asked) == 3


def test_the_quota_ends_the_recording_once_with_every_file_whole(tmp_path):
    recorder, _, ended, _ = _recorder(tmp_path, quota=5000)
    for i in range(200):
        recorder.packet("mic", "audio", "p", None, _packet(1, i, bytes(100)))
    assert ended and ended[0][0] == "quota" and len(ended) == 1
    track = read_track(recorder.tracks["mic"].writer.path.read_bytes())
    assert track.complete and 30 < len(track.packets) < 50
    assert sum(p.stat().st_size for p in recorder.path.iterdir()) <= 5000
    assert recorder.summary()["ended"] == "quota"


def test_a_missing_or_unwritable_directory_is_refused_at_the_start(tmp_path):
    with pytest.raises(RecordingError, match="does not exist"):
        RoomRecorder(str(tmp_path / "nowhere"), "r", "x", 100, print, print)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:
        with pytest.raises(RecordingError, match="not writable"):
            RoomRecorder(str(locked), "r", "x", 100, print, print)
    with pytest.raises(RecordingError, match="recording id"):
        RoomRecorder(str(tmp_path), "r", "../x", 100, print, print)
    RoomRecorder(str(tmp_path), "r", "x", 100, print, print)
    with pytest.raises(RecordingError, match="exists already"):
        RoomRecorder(str(tmp_path), "r", "x", 100, print, print)


def test_a_write_that_fails_ends_the_recording_with_an_error(tmp_path):
    recorder, _, ended, _ = _recorder(tmp_path)
    recorder.packet("mic", "audio", "p", None, _packet(1, 1, b"x"))
    os.close(recorder.tracks["mic"].writer._fd)
    recorder.tracks["mic"].writer._fd = os.open(os.devnull, os.O_RDONLY)  # writes now fail with EBADF
    recorder.packet("mic", "audio", "p", None, _packet(1, 2, b"x"))
    recorder.flush()
    assert ended and ended[0][0] == "error" and "writing" in ended[0][1]


def test_its_state_says_why_it_ended_and_a_cut_one_says_nothing(tmp_path):
    from videoroomd.recording.store import recordings

    recorder, _, _, clock = _recorder(tmp_path, quota=2000)
    recorder.write_meta({"room": "lobby", "by": "Ann"})
    (running,) = recordings(tmp_path)
    assert running.ended == "" and running.by == "Ann"  # runs (or was cut: a worker killed)
    clock.now += 1
    for sequence in range(100):
        recorder.packet("a:cam", "video", "a", None, _packet(7, sequence, KEY if sequence == 0 else DELTA))
    assert recorder.ended == "quota"
    (ended,) = recordings(tmp_path)
    assert ended.ended == "quota" and ended.by == "Ann" and ended.as_dict()["ended"] == "quota"


def _batch(recorder, track_id, ssrc, first, payloads):
    """Records as the data plane makes them for ``ssrc`` (TrackEncoder's, from the track file's start)."""
    encoder = recorder.tracks[track_id].writer.encoder
    records = b"".join(encoder.rtp(encoder.start + 0.5, True, 96, first + i, 0, ssrc, payload)
                       for i, payload in enumerate(payloads))
    keyframe = next((i for i, payload in enumerate(payloads) if payload == KEY), -1)
    return records, len(payloads), keyframe, round(encoder.start * 1_000_000)


def test_records_made_by_the_data_plane_are_kept_per_batch_as_packets_would_be(tmp_path):
    """A batch of one SSRC's records: the layer kept, a keyframe asked unless the batch starts with
    one, records for another file's start dropped, the quota stopping before the first record past it."""
    recorder, asked, ended, clock = _recorder(tmp_path, quota=2000)
    start = recorder.track_start("cam", "video", "p")
    assert start == recorder.tracks["cam"].writer.encoder.start == clock.now
    records, count, keyframe, start_us = _batch(recorder, "cam", 30, 1, [DELTA, KEY, DELTA])
    recorder.records("cam", 2, 30, records, count, keyframe, start_us)
    assert asked == [("cam", 30)]                                  # its first packet was no key frame
    recorder.records("cam", 0, 10, *_batch(recorder, "cam", 10, 1, [KEY]))  # lower, while 30 runs: dropped
    recorder.records("cam", 2, 30, records, count, keyframe, start_us + 1)  # another file's: dropped
    clock.now += 2
    recorder.records("cam", 1, 20, *_batch(recorder, "cam", 20, 1, [KEY, DELTA]))  # 30 went quiet: taken
    assert asked == [("cam", 30)]                                  # it starts with a key frame
    assert [(r.ssrc, r.sequence) for r in _read(recorder, "cam").packets] == [(30, 1), (30, 2), (30, 3), (20, 1),
                                                                              (20, 2)]
    left = recorder.quota - recorder.bytes
    records, count, keyframe, start_us = _batch(recorder, "cam", 20, 3, [bytes(100)] * 20)
    recorder.records("cam", 1, 20, records, count, keyframe, start_us)
    assert ended == [("quota", "the recording reached its quota of 2000 bytes")]
    track = _read(recorder, "cam")
    assert track.complete and len(track.packets) == 5 + left // 129
    assert recorder.track_start("cam", "video", "p") is None       # ended
