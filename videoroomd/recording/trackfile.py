"""The track file: one recorded track, append-only, readable up to its last whole record (pure).

Layout (all integers big-endian; see docs/recording.md)::

    magic   b"VRTRACK\\n"                  8 bytes
    length  u32                            bytes of the header JSON that follows (at most MAX_HEADER)
    header  JSON object (UTF-8)            version, kind, codec, clock_rate, participant, track, start
    crc     u32                            CRC-32 of length + header
    records, each:
      length  u32                          bytes of type + body (at most MAX_RECORD)
      type    u8                           RTP (1) or SENDER_REPORT (2)
      body
      crc     u32                          CRC-32 of length + type + body

    RTP body:    arrival_us u64, marker u8, payload_type u8, sequence u16, timestamp u32,
                 ssrc u32, payload (the rest)
    SR body:     arrival_us u64, ssrc u32, ntp u64, rtp u32

``arrival_us`` counts microseconds since the header's ``start`` (wall time, seconds since the
Unix epoch). A file cut anywhere (a killed process, a full disk) reads up to its last whole
record: :func:`read_track` stops at the first record that is short or whose checksum fails,
and says so. Nothing here opens a file: :class:`TrackEncoder` makes bytes, the reader takes
bytes.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

__all__ = ["FORMAT_VERSION", "MAGIC", "MAX_HEADER", "MAX_PAYLOAD", "MAX_RECORD", "RtpRecord", "SenderReport",
           "Track", "TrackEncoder", "TrackFileError", "TrackHeader", "encode_header", "read_track"]

MAGIC = b"VRTRACK\n"
FORMAT_VERSION = 1
MAX_HEADER = 4096                 # bytes of header JSON
MAX_PAYLOAD = 2048                # bytes of one RTP payload (a UDP datagram on an Ethernet path is less)
MAX_RECORD = 1 + 22 + MAX_PAYLOAD
MAX_TEXT = 256                    # characters of a participant or track id in the header
KINDS = {"audio": "opus", "video": "vp8"}

RTP = 1
SENDER_REPORT = 2

_U32 = struct.Struct("!I")
_RTP = struct.Struct("!QBBHII")
_SR = struct.Struct("!QIQI")


class TrackFileError(ValueError):
    """A track file (or what is about to be written to one) that breaks the format; says what and where."""


@dataclass(frozen=True)
class TrackHeader:
    """What a track file says about its track."""

    kind: str             # audio | video
    codec: str            # opus | vp8
    clock_rate: int
    participant: str      # the endpoint id that published it
    track: str            # its track id
    start: float          # wall time (Unix seconds) that arrival times count from
    version: int = FORMAT_VERSION

    def check(self) -> "TrackHeader":
        """This header, or TrackFileError naming the field that breaks the format."""
        if self.version != FORMAT_VERSION:
            raise TrackFileError(f"header: version {self.version!r} is not {FORMAT_VERSION}")
        if KINDS.get(self.kind) != self.codec:
            raise TrackFileError(f"header: kind/codec {self.kind!r}/{self.codec!r} is not audio/opus or video/vp8")
        if not isinstance(self.clock_rate, int) or not 1000 <= self.clock_rate <= 200_000:
            raise TrackFileError(f"header: clock_rate {self.clock_rate!r} is not an integer in 1000..200000")
        for name in ("participant", "track"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
                raise TrackFileError(f"header: {name} must be a text of 1 to {MAX_TEXT} characters")
        if not isinstance(self.start, (int, float)) or not 0 <= self.start < 2 ** 40:
            raise TrackFileError(f"header: start {self.start!r} is not a wall time in seconds")
        return self


@dataclass(frozen=True)
class RtpRecord:
    arrival_us: int
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


@dataclass(frozen=True)
class SenderReport:
    """An RTCP sender report of the track's publisher: RTP time ``rtp`` was NTP time ``ntp`` (64-bit)."""

    arrival_us: int
    ssrc: int
    ntp: int
    rtp: int


@dataclass
class Track:
    """What :func:`read_track` found: the header, the records in order, and how the file ends."""

    header: TrackHeader
    records: list[RtpRecord | SenderReport] = field(default_factory=list)
    complete: bool = True     # False: the file ends inside a record (cut) or a record is damaged
    valid_bytes: int = 0      # bytes up to the end of the last whole record
    problem: str | None = None

    @property
    def packets(self) -> list[RtpRecord]:
        return [r for r in self.records if isinstance(r, RtpRecord)]

    @property
    def sender_reports(self) -> list[SenderReport]:
        return [r for r in self.records if isinstance(r, SenderReport)]


def encode_header(header: TrackHeader) -> bytes:
    """The bytes a track file starts with; TrackFileError for a header that breaks the format."""
    header.check()
    text = json.dumps({"version": header.version, "kind": header.kind, "codec": header.codec,
                       "clock_rate": header.clock_rate, "participant": header.participant,
                       "track": header.track, "start": header.start}, separators=(",", ":")).encode()
    if len(text) > MAX_HEADER:
        raise TrackFileError(f"header: {len(text)} bytes of JSON, at most {MAX_HEADER}")
    framed = _U32.pack(len(text)) + text
    return MAGIC + framed + _U32.pack(zlib.crc32(framed))


def _frame(kind: int, body: bytes) -> bytes:
    framed = _U32.pack(1 + len(body)) + bytes((kind,)) + body
    return framed + _U32.pack(zlib.crc32(framed))


class TrackEncoder:
    """Makes the bytes of a track's records; arrival times are taken relative to ``start``."""

    def __init__(self, start: float):
        self.start = start

    def _arrival(self, wall: float) -> int:
        return max(0, min(int((wall - self.start) * 1_000_000), 2 ** 64 - 1))

    def rtp(self, wall: float, marker: bool, payload_type: int, sequence: int, timestamp: int, ssrc: int,
            payload: bytes) -> bytes:
        """One RTP record; TrackFileError for a payload over MAX_PAYLOAD or a field out of range."""
        if len(payload) > MAX_PAYLOAD:
            raise TrackFileError(f"RTP payload of {len(payload)} bytes, at most {MAX_PAYLOAD}")
        try:
            body = _RTP.pack(self._arrival(wall), 1 if marker else 0, payload_type, sequence, timestamp, ssrc)
        except struct.error as error:
            raise TrackFileError(f"RTP record field out of range: {error}") from None
        return _frame(RTP, body + payload)

    def sender_report(self, wall: float, ssrc: int, ntp: int, rtp: int) -> bytes:
        """One sender-report record; TrackFileError for a field out of range."""
        try:
            return _frame(SENDER_REPORT, _SR.pack(self._arrival(wall), ssrc, ntp, rtp))
        except struct.error as error:
            raise TrackFileError(f"sender report field out of range: {error}") from None


def _read_header(data: bytes | memoryview) -> tuple[TrackHeader, int]:
    if bytes(data[:len(MAGIC)]) != MAGIC:
        raise TrackFileError("not a track file (magic bytes at offset 0)")
    pos = len(MAGIC)
    if len(data) < pos + 4:
        raise TrackFileError(f"header cut at offset {len(data)}")
    (length,) = _U32.unpack_from(data, pos)
    if length > MAX_HEADER:
        raise TrackFileError(f"header length {length} at offset {pos}, at most {MAX_HEADER}")
    end = pos + 4 + length
    if len(data) < end + 4:
        raise TrackFileError(f"header cut at offset {len(data)}")
    if zlib.crc32(data[pos:end]) != _U32.unpack_from(data, end)[0]:
        raise TrackFileError(f"header checksum at offset {end} does not match")
    try:
        fields = json.loads(bytes(data[pos + 4:end]))
        header = TrackHeader(kind=fields["kind"], codec=fields["codec"], clock_rate=fields["clock_rate"],
                             participant=fields["participant"], track=fields["track"], start=fields["start"],
                             version=fields["version"])
    except (ValueError, KeyError, TypeError) as error:
        raise TrackFileError(f"header at offset {pos + 4} is not the JSON object expected: {error!r}") from None
    return header.check(), end + 4


def _decode(kind: int, body: memoryview) -> RtpRecord | SenderReport | None:
    """The record, None for an unknown type (skipped: a later version may add types)."""
    if kind == RTP and len(body) >= _RTP.size:
        arrival, marker, payload_type, sequence, timestamp, ssrc = _RTP.unpack_from(body)
        return RtpRecord(arrival, bool(marker), payload_type, sequence, timestamp, ssrc, bytes(body[_RTP.size:]))
    if kind == SENDER_REPORT and len(body) == _SR.size:
        return SenderReport(*_SR.unpack_from(body))
    if kind in (RTP, SENDER_REPORT):
        raise TrackFileError(f"record of type {kind} with a body of {len(body)} bytes")
    return None


def read_track(data: bytes) -> Track:
    """Every whole record of a track file's bytes ``data``.

    Raises TrackFileError only when the header itself is missing or damaged; a record cut or
    damaged ends the reading there (``complete`` False, ``problem`` says where)."""
    view = memoryview(data)
    header, pos = _read_header(view)
    track = Track(header, valid_bytes=pos)
    size = len(view)
    while pos < size:
        if size - pos < 4:
            return _stop(track, f"record cut at offset {pos}")
        (length,) = _U32.unpack_from(view, pos)
        if not 1 <= length <= MAX_RECORD:
            return _stop(track, f"record length {length} at offset {pos} out of 1..{MAX_RECORD}")
        end = pos + 4 + length
        if size < end + 4:
            return _stop(track, f"record cut at offset {pos}")
        if zlib.crc32(view[pos:end]) != _U32.unpack_from(view, end)[0]:
            return _stop(track, f"record checksum at offset {end} does not match")
        try:
            record = _decode(view[pos + 4], view[pos + 5:end])
        except TrackFileError as error:
            return _stop(track, f"{error} at offset {pos}")
        if record is not None:
            track.records.append(record)
        pos = track.valid_bytes = end + 4
    return track


def _stop(track: Track, problem: str) -> Track:
    track.complete = False
    track.problem = problem
    return track
