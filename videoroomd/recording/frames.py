"""From a track file's RTP records to timed frames: VP8 and Opus depacketized, losses and gaps handled (pure).

Each track is cut into segments at an SSRC change (a simulcast layer switch,
a republished track); in a segment the sequence numbers and timestamps are
unwrapped to 64 bits, packets sorted and retransmissions dropped. A VP8
frame is its packets of one timestamp, from the one with S=1 and partition
0 to the one with the marker bit, with no sequence number missing between:
a frame with a hole is dropped, and the frames after it until the next key
frame (a decoder would show garbage, or fail). Every segment starts on a
key frame. Opus is one frame a packet.

Times: each frame gets its time in seconds on the track's own timeline:
its RTP timestamp from where the segment starts (:func:`segment_start`):
the arrival of its least delayed packet, less that packet's RTP time since
the segment's first. Timing from the first packet alone would put a whole
segment late by the delay of that one packet (a queue, a busy worker) and
make its last frames reach past the next segment's first. The exporter
aligns tracks by sender reports, see :mod:`.export`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .trackfile import RtpRecord, SenderReport, Track

__all__ = ["Frame", "Segment", "opus_frames", "segment_start", "segments", "vp8_descriptor_size", "vp8_frames", "vp8_size"]


@dataclass(frozen=True)
class Frame:
    time: float        # seconds on the track's timeline
    data: bytes
    keyframe: bool


@dataclass
class Segment:
    """The packets of one SSRC in a row, in order, without duplicates."""

    ssrc: int
    packets: list[tuple[int, int, RtpRecord]]  # (extended sequence, extended timestamp, record)
    first_arrival_us: int


def _unwrap(previous: int | None, value: int, bits: int) -> int:
    if previous is None:
        return value
    half, size = 1 << (bits - 1), 1 << bits
    delta = (value - previous) % size
    if delta >= half:
        delta -= size
    return previous + delta


def segments(records: Iterable[RtpRecord | SenderReport]) -> list[Segment]:
    """The RTP records cut at each SSRC change, each sorted by sequence number, duplicates dropped."""
    out: list[Segment] = []
    current: Segment | None = None
    last_seq = last_ts = None
    for record in records:
        if not isinstance(record, RtpRecord):
            continue
        if current is None or record.ssrc != current.ssrc:
            current = Segment(record.ssrc, [], record.arrival_us)
            out.append(current)
            last_seq = last_ts = None
        last_seq = _unwrap(last_seq, record.sequence, 16)
        last_ts = _unwrap(last_ts, record.timestamp, 32)
        current.packets.append((last_seq, last_ts, record))
    for segment in out:
        seen: set[int] = set()
        ordered = []
        for item in sorted(segment.packets, key=lambda p: p[0]):
            if item[0] not in seen:
                seen.add(item[0])
                ordered.append(item)
        segment.packets = ordered
    return out


def vp8_descriptor_size(payload: bytes) -> int | None:
    """Bytes of the VP8 payload descriptor (RFC 7741 4.2) at the start of ``payload``; None if cut."""
    size = len(payload)
    if size < 1:
        return None
    offset = 1
    if payload[0] & 0x80:
        if size < 2:
            return None
        extended = payload[1]
        offset = 2
        if extended & 0x80:
            if size <= offset:
                return None
            offset += 2 if payload[offset] & 0x80 else 1
        if extended & 0x40:
            offset += 1
        if extended & 0x30:
            offset += 1
    return offset if offset < size else None


MAX_EARLIER = 2.0  # seconds a packet may move a segment's start before its first arrival


def segment_start(segment: Segment, clock_rate: int) -> float:
    """Seconds on the track's timeline of the segment's first RTP timestamp: the least of each
    packet's arrival less its RTP time since then. Packets that would move it more than
    MAX_EARLIER before the first arrival are not trusted (a timestamp jump, not a delay)."""
    if not segment.packets:
        return segment.first_arrival_us / 1e6
    base_ts = segment.packets[0][1]
    first = min(record.arrival_us / 1e6 - (ts - base_ts) / clock_rate
                for _, ts, record in segment.packets if record.arrival_us == segment.first_arrival_us)
    starts = (record.arrival_us / 1e6 - (ts - base_ts) / clock_rate for _, ts, record in segment.packets)
    return min((start for start in starts if start >= first - MAX_EARLIER), default=first)


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 key frame (RFC 6386 9.1), None for anything else."""
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF


def vp8_frames(segment: Segment, clock_rate: int = 90000) -> list[Frame]:
    """The whole VP8 frames of ``segment`` from its first key frame on (see the module's rules)."""
    frames: list[Frame] = []
    base_ts = segment.packets[0][1] if segment.packets else 0
    start = segment_start(segment, clock_rate)
    parts: list[bytes] = []
    frame_ts: int | None = None   # the timestamp of the frame being put together; None: none is
    previous: int | None = None   # the sequence number of the packet before
    need_key = True
    for seq, ts, record in segment.packets:
        if previous is not None and seq != previous + 1:
            parts, frame_ts, need_key = [], None, True  # packets lost: their frame, and what depends on it
        previous = seq
        payload = record.payload
        size = vp8_descriptor_size(payload)
        if size is None:
            parts, frame_ts, need_key = [], None, True
            continue
        if payload[0] & 0x10 and payload[0] & 0x07 == 0:  # S=1, partition 0: a frame begins
            if frame_ts is not None:
                need_key = True  # the one before never ended
            parts, frame_ts = [payload[size:]], ts
        elif frame_ts is None or ts != frame_ts:
            parts, frame_ts, need_key = [], None, True
            continue
        else:
            parts.append(payload[size:])
        if record.marker:
            data = b"".join(parts)
            keyframe = bool(data) and not data[0] & 1
            if keyframe or not need_key:
                need_key = False
                frames.append(Frame(start + (ts - base_ts) / clock_rate, data, keyframe))
            parts, frame_ts = [], None
    return frames


def opus_frames(segment: Segment, clock_rate: int = 48000) -> list[Frame]:
    """One Opus frame per packet of ``segment``."""
    if not segment.packets:
        return []
    base_ts = segment.packets[0][1]
    start = segment_start(segment, clock_rate)
    return [Frame(start + (ts - base_ts) / clock_rate, record.payload, True)
            for _, ts, record in segment.packets if record.payload]


def sender_clock(track: Track) -> tuple[float, float] | None:
    """(NTP seconds, wall seconds on the track's timeline) of the same instant, from the track's first sender
    report whose SSRC's segment holds packets; None without one. Tracks of one publisher share
    the NTP clock: the difference of the two numbers aligns them."""
    reports = track.sender_reports
    if not reports:
        return None
    for segment in segments(track.records):
        for report in reports:
            if report.ssrc != segment.ssrc or not segment.packets:
                continue
            _, base_ts, _ = segment.packets[0]
            rate = track.header.clock_rate
            ts = _unwrap(base_ts, report.rtp, 32)
            timeline = track.header.start + segment_start(segment, rate) + (ts - base_ts) / rate
            ntp = (report.ntp >> 32) + (report.ntp & 0xFFFFFFFF) / 2 ** 32
            return ntp, timeline
    return None
