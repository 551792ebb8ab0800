"""The track file format: written records read back; a file cut anywhere reads up to its last whole record."""

from __future__ import annotations

import random

import pytest

from videoroomd.recording.trackfile import (MAX_PAYLOAD, RtpRecord, SenderReport, TrackEncoder, TrackFileError,
                                            TrackHeader, encode_header, read_track)

START = 1_790_000_000.25


def _header(**changes) -> TrackHeader:
    fields = dict(kind="video", codec="vp8", clock_rate=90000, participant="peer-1", track="cam-1", start=START)
    fields.update(changes)
    return TrackHeader(**fields)


def _file(count: int = 50) -> tuple[bytes, list, list[int]]:
    """A file of ``count`` RTP records with a sender report every tenth; the offsets where each record ends."""
    encoder = TrackEncoder(START)
    data = bytearray(encode_header(_header()))
    expected, ends = [], [len(data)]
    rng = random.Random(7)
    for i in range(count):
        payload = rng.randbytes(rng.randrange(0, 1200))
        wall = START + i * 0.033
        data += encoder.rtp(wall, i % 3 == 0, 96, (65530 + i) % 65536, 3000 * i, 0x1234, payload)
        expected.append(RtpRecord(int(round((wall - START) * 1e6)), i % 3 == 0, 96, (65530 + i) % 65536, 3000 * i,
                                  0x1234, payload))
        ends.append(len(data))
        if i % 10 == 9:
            data += encoder.sender_report(wall, 0x1234, (3_999_000_000 << 32) | i, 3000 * i)
            expected.append(SenderReport(int(round((wall - START) * 1e6)), 0x1234, (3_999_000_000 << 32) | i, 3000 * i))
            ends.append(len(data))
    return bytes(data), expected, ends


def _same(found, expected) -> None:
    assert len(found) == len(expected)
    for got, want in zip(found, expected):
        assert type(got) is type(want)
        assert abs(got.arrival_us - want.arrival_us) <= 1
        assert got.__dict__ | {"arrival_us": 0} == want.__dict__ | {"arrival_us": 0}


def test_every_record_written_is_read_back_in_order_with_the_header():
    data, expected, _ = _file()
    track = read_track(data)
    assert track.header == _header()
    assert track.complete and track.problem is None and track.valid_bytes == len(data)
    _same(track.records, expected)
    assert len(track.packets) == 50 and len(track.sender_reports) == 5


def test_a_file_cut_at_any_byte_reads_every_record_whole_before_the_cut():
    data, expected, ends = _file(12)
    header_end = ends[0]
    for cut in range(header_end, len(data) + 1):
        track = read_track(data[:cut])
        whole = sum(1 for end in ends[1:] if end <= cut)
        _same(track.records, expected[:whole])
        assert track.valid_bytes == max(end for end in ends if end <= cut)
        assert track.complete == (cut in ends)
        if not track.complete:
            assert "offset" in track.problem


def test_a_file_cut_inside_its_header_is_refused_with_where():
    data, _, ends = _file(1)
    for cut in range(0, ends[0]):
        with pytest.raises(TrackFileError, match="offset|magic"):
            read_track(data[:cut])


def test_a_damaged_record_ends_the_reading_there_and_says_where():
    data, expected, ends = _file(20)
    damaged = bytearray(data)
    damaged[ends[5] + 30] ^= 0x40  # inside the sixth record's body
    track = read_track(bytes(damaged))
    _same(track.records, expected[:5])
    assert not track.complete and "checksum" in track.problem


def test_random_garbage_after_the_header_never_raises_and_never_reads_past_the_data():
    header = encode_header(_header())
    rng = random.Random(11)
    for _ in range(300):
        track = read_track(header + rng.randbytes(rng.randrange(0, 200)))
        assert track.valid_bytes <= len(header) + 200


@pytest.mark.parametrize("changes, what", [
    ({"kind": "video", "codec": "h264"}, "kind/codec"),
    ({"kind": "text", "codec": "vp8"}, "kind/codec"),
    ({"clock_rate": 0}, "clock_rate"),
    ({"participant": ""}, "participant"),
    ({"track": "x" * 300}, "track"),
    ({"start": -1}, "start"),
    ({"version": 2}, "version"),
])
def test_a_header_that_breaks_the_format_is_refused_naming_the_field(changes, what):
    with pytest.raises(TrackFileError, match=what):
        encode_header(_header(**changes))


def test_a_header_from_another_version_is_refused_on_reading():
    text = encode_header(_header()).replace(b'"version":1', b'"version":9')
    with pytest.raises(TrackFileError):
        read_track(text)


def test_records_over_the_limits_are_refused_when_written():
    encoder = TrackEncoder(START)
    with pytest.raises(TrackFileError, match="payload"):
        encoder.rtp(START, False, 96, 1, 1, 1, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(TrackFileError, match="range"):
        encoder.rtp(START, False, 300, 1, 1, 1, b"")
    with pytest.raises(TrackFileError, match="range"):
        encoder.sender_report(START, 2 ** 32, 0, 0)


def test_arrival_before_the_start_counts_as_the_start():
    encoder = TrackEncoder(START)
    track = read_track(encode_header(_header()) + encoder.rtp(START - 5, False, 111, 1, 2, 3, b"x"))
    assert track.packets[0].arrival_us == 0
