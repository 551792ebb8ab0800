"""From recorded RTP to frames: VP8 frames whole or dropped, every segment from a key frame, wraps and repeats."""

from __future__ import annotations

import pytest

from videoroomd.recording.frames import opus_frames, segment_start, segments, vp8_frames, vp8_size
from videoroomd.recording.trackfile import RtpRecord, Track

KEY = bytes([0x9d ^ 0x9d, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00])  # key frame, 320x240
DELTA = bytes([0x01, 0, 0])


def _frame_packets(seq: int, ts: int, frame: bytes, parts: int = 2, ssrc: int = 7, arrival: int = 0) -> list[RtpRecord]:
    """One frame as ``parts`` packets with a one-byte descriptor (S=1 on the first), arriving as
    its RTP time says (µs)."""
    chunk = -(-len(frame) // parts)
    out = []
    for i in range(parts):
        descriptor = bytes([0x10 if i == 0 else 0x00])
        out.append(RtpRecord(arrival + ts * 100 // 9, i == parts - 1, 96, (seq + i) % 65536, ts % 2 ** 32, ssrc,
                             descriptor + frame[i * chunk:(i + 1) * chunk]))
    return out


def _stream(frames: list[bytes], start_seq: int = 65530, start_ts: int = 2 ** 32 - 6000) -> list[RtpRecord]:
    records = []
    for i, frame in enumerate(frames):
        records += _frame_packets(start_seq + 2 * i, start_ts + 3000 * i, frame)
    return records


def test_whole_frames_come_out_with_their_times_across_sequence_and_timestamp_wraps():
    records = _stream([KEY, DELTA, DELTA, KEY, DELTA])
    (segment,) = segments(records)
    frames = vp8_frames(segment)
    assert [f.keyframe for f in frames] == [True, False, False, True, False]
    assert [round(f.time - frames[0].time, 4) for f in frames] == [0, 0.0333, 0.0667, 0.1, 0.1333]
    assert frames[0].data == KEY and vp8_size(frames[0].data) == (320, 240)


def test_a_frame_with_a_hole_is_dropped_and_so_is_all_until_the_next_key_frame():
    records = _stream([KEY, DELTA, DELTA, DELTA, KEY, DELTA])
    del records[3]  # the second packet of frame 1
    frames = vp8_frames(segments(records)[0])
    assert [f.keyframe for f in frames] == [True, True, False]


def test_a_segment_that_starts_on_a_delta_frame_starts_at_its_first_key_frame():
    frames = vp8_frames(segments(_stream([DELTA, DELTA, KEY, DELTA]))[0])
    assert [f.keyframe for f in frames] == [True, False]


def test_repeated_and_reordered_packets_make_each_frame_once():
    records = _stream([KEY, DELTA, DELTA])
    shuffled = records[:2] + [records[3], records[2]] + records[2:]  # a late packet and its retransmission
    assert len(vp8_frames(segments(shuffled)[0])) == 3


def test_an_ssrc_change_starts_a_new_segment():
    records = _stream([KEY, DELTA]) + [r.__class__(**{**r.__dict__, "ssrc": 9}) for r in _stream([DELTA, KEY])]
    first, second = segments(records)
    assert (first.ssrc, second.ssrc) == (7, 9)
    assert len(vp8_frames(first)) == 2 and len(vp8_frames(second)) == 1


def test_opus_is_one_frame_per_packet_timed_by_its_timestamp():
    records = [RtpRecord(20_000 * i, False, 111, i, 960 * i, 3, b"\xfc\x01") for i in range(5)]
    frames = opus_frames(segments(records)[0])
    assert [round(f.time, 3) for f in frames] == [0, 0.02, 0.04, 0.06, 0.08]


def _track(kind: str, start: float, report_ntp_s: float, rate: int):
    from videoroomd.recording.trackfile import SenderReport, Track, TrackHeader

    header = TrackHeader(kind, "vp8" if kind == "video" else "opus", rate, "p", kind, start)
    records = [RtpRecord(0, False, 96, 1, 1000, 5, b"\x10\x00"), SenderReport(0, 5, int(report_ntp_s * 2 ** 32), 1000)]
    return Track(header, records)


def test_sender_reports_align_a_participants_tracks_unless_they_disagree_with_arrival_by_over_a_second():
    from videoroomd.recording.export import _offsets

    audio = _track("audio", 1000.0, 5000.0, 48000)      # its first packet at wall 1000.0 was NTP 5000.0
    video = _track("video", 1000.2, 5000.1, 90000)      # arrived 0.2 s later but was taken 0.1 s later
    assert [round(o, 3) for o in _offsets([audio, video])] == [0.0, -0.1]
    far = _track("video", 1000.2, 5007.0, 90000)        # a report clock 7 s off: arrival is the better guess
    assert _offsets([audio, far]) == [0.0, 0.0]
    assert _offsets([audio, Track(far.header, far.packets)]) == [0.0, 0.0]  # one without reports: arrival


def test_a_layer_switch_whose_last_frames_reach_past_the_next_key_frame_plays_in_order():
    """The first layer's packets came in 0.1 s late, all of them (a queue), so its RTP times run
    0.1 s past the second layer's first key frame: its tail is dropped and the file goes on from that key frame (a
    decoder handed an old layer's delta frame after the new layer's key frame refuses it)."""
    from videoroomd.recording.export import _frames
    from videoroomd.recording.trackfile import TrackHeader

    late = [RtpRecord(r.arrival_us + 100_000, r.marker, r.payload_type, r.sequence,
                      r.timestamp, r.ssrc, r.payload) for r in _stream([KEY] + [DELTA] * 9, 0, 0)]
    switched = [RtpRecord(r.arrival_us + 300_000, r.marker, r.payload_type, r.sequence, r.timestamp, 9, r.payload)
                for r in _stream([KEY, DELTA, DELTA], 500, 0)]
    header = TrackHeader("video", "vp8", 90000, "p", "video", 0.0)
    frames = _frames(Track(header, late + switched))
    times = [f.time for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert [f.keyframe for f in frames] == [True, False, False, False, False, False, True, False, False]
    assert frames[6].time == pytest.approx(0.3, abs=1e-5)  # (arrival times are whole µs)


def test_a_segment_is_timed_from_its_least_delayed_packet_not_its_first():
    """A first packet held up (a busy worker, a queue) does not put the whole segment late: the
    frames keep their RTP spacing from the packet that came soonest; a timestamp jump far ahead
    of its arrival is no delay and moves nothing."""
    records = _stream([KEY] + [DELTA] * 9, 0, 0)
    held = [RtpRecord(r.arrival_us + (400_000 if i == 0 else 0), r.marker, r.payload_type, r.sequence,
                      r.timestamp, r.ssrc, r.payload) for i, r in enumerate(records)]
    (segment,) = segments(held)
    first = records[0].arrival_us / 1e6
    assert segment_start(segment, 90000) == segment_start(segments(records)[0], 90000) == pytest.approx(first, abs=1e-5)
    assert vp8_frames(segment)[0].time == pytest.approx(first, abs=1e-5)
    jumped = held[:-1] + [RtpRecord(held[-1].arrival_us, 1, held[-1].payload_type, held[-1].sequence,
                                    held[-1].timestamp + 90000 * 10, held[-1].ssrc, held[-1].payload)]
    assert segment_start(segments(jumped)[0], 90000) == pytest.approx(first, abs=1e-5)
