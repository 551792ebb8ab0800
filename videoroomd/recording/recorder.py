"""One room's recording in its media worker: a track file per published track, fed packet by packet (sync).

The worker hands each packet of a published track to :meth:`RoomRecorder.packet`
as it reaches the data plane (decrypted, before forwarding) and each sender
report of its publisher to :meth:`RoomRecorder.sender_report`; nothing is
decoded. Of a simulcast track only one layer is kept: the highest the
publisher sends (a higher one that appears is taken at once, a lower one
only after the kept one went quiet for ``LAYER_QUIET`` seconds). Until a key
frame of the kept layer has come, one is asked for (``request_keyframe``) at
most every ``KEYFRAME_INTERVAL`` seconds.

The recorder ends itself when the next record would pass its quota, or a
write fails (``on_end(reason, detail)``, once); the call is not concerned.

Paths are made of ids only (:func:`safe_id`): the recording's directory is
``DIRECTORY/ROOM_ID/RECORDING_ID`` and a track's file
``PARTICIPANT.TRACK.vrtrack`` with each part checked or hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..media.dataplane.rtp_packets import vp8_starts_keyframe
from .trackfile import MAX_PAYLOAD, TrackFileError, TrackHeader
from .writer import MAX_BUFFERED, TrackWriter

__all__ = ["RecordingError", "RoomRecorder", "safe_id", "TRACK_SUFFIX"]

TRACK_SUFFIX = ".vrtrack"
MAX_TRACKS = 256            # track files one recording makes at most (publishers come and go)
LAYER_QUIET = 1.0           # seconds without the kept layer's packets before a lower one is taken
KEYFRAME_INTERVAL = 1.0     # seconds between two keyframe requests for one track
CLOCK_RATES = {"audio": 48000, "video": 90000}
CODECS = {"audio": "opus", "video": "vp8"}
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class RecordingError(Exception):
    """A recording could not start (directory missing, not writable, bad id); says what and where."""


def safe_id(value: str) -> str:
    """``value`` when it is a plain id (letters, digits, '-', '_', at most 64), else a digest of it:
    never a path separator, never '..'."""
    if _ID.fullmatch(value):
        return value
    return "h" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:24]


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise RecordingError(f"{what} {value[:80]!r} is not 1 to 64 letters, digits, '-' or '_'")
    return value


@dataclass
class _Track:
    writer: TrackWriter
    kind: str
    ssrc: int | None = None
    layer: int = -1
    last_seen: float = 0.0
    keyframe: bool = False
    asked: float = float("-inf")


class RoomRecorder:
    """The tracks of one room being recorded into ``directory/room_id/recording_id``."""

    def __init__(self, directory: str, room_id: str, recording_id: str, quota: int,
                 request_keyframe: Callable[[str, int], None], on_end: Callable[[str, str], None],
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.recording_id = check_id(recording_id, "recording id")
        self.path = _recording_dir(directory, check_id(room_id, "room id"), recording_id)
        self.quota = quota
        self.request_keyframe = request_keyframe
        self.on_end = on_end
        self.clock = clock
        self.monotonic = monotonic
        self.started = clock()
        self.bytes = 0                     # bytes of records and headers made, written or buffered
        self.tracks: dict[str, _Track] = {}
        self.ended: str | None = None      # why it ended; None while it runs
        self.meta: dict[str, Any] | None = None

    def write_meta(self, meta: dict[str, Any]) -> None:
        """``recording.json`` beside the tracks: what the daemon wants kept (room name, who started it);
        written again when the recording ends, with why and when (without: it was cut, a worker killed)."""
        self.meta = {**meta, "started": self.started}
        (self.path / "recording.json").write_text(json.dumps(self.meta))

    # -- the packet path ---------------------------------------------------------------------
    def packet(self, track_id: str, kind: str, participant: str, layer: int | None, packet: Any) -> None:
        """A packet of ``track_id`` (``layer``: its simulcast layer, None for one stream; -2: a
        layered track's packet of no known layer, dropped)."""
        if self.ended is not None:
            return
        track = self.tracks.get(track_id) or self._open(track_id, kind, participant)
        if track is None:
            return
        now = self.monotonic()
        ssrc = packet.ssrc
        if not self._keeps(track, ssrc, layer, now):
            return
        payload = packet.payload
        if not track.keyframe:
            starts = vp8_starts_keyframe(payload)
            self._await_keyframe(track, track_id, ssrc, now, starts, starts)
        if len(payload) > MAX_PAYLOAD:
            return  # no browser sends one; not worth a track file's limit
        self._append(track, track.writer.encoder.rtp(self.clock(), packet.marker, packet.payload_type,
                                                      packet.sequence_number, packet.timestamp, ssrc, payload))

    def records(self, track_id: str, layer: int | None, ssrc: int, records: bytes, count: int, keyframe: int,
                start_us: int) -> None:
        """``count`` RTP records of ``ssrc``'s packets, in arrival order, made by the data plane with
        their arrival counted from ``start_us`` (µs; the track file's start, :meth:`track_start`);
        the ``keyframe``-th (from 0; -1: none) the first to start a VP8 key frame. As :meth:`packet`
        for each of them: the layer kept, the key frame awaited, the quota."""
        track = self.tracks.get(track_id)
        if self.ended is not None or track is None or count <= 0 or start_us != _micros(track.writer.encoder.start):
            return  # made for another recording's file
        now = self.monotonic()
        if not self._keeps(track, ssrc, layer, now):
            return
        if not track.keyframe:
            self._await_keyframe(track, track_id, ssrc, now, keyframe == 0, keyframe >= 0)
        self._append(track, records)

    def track_start(self, track_id: str, kind: str, participant: str) -> float | None:
        """The start (wall time) of ``track_id``'s file, made now if it was not; None when ended or
        it cannot have one (too many tracks, a kind not recorded, the file not made)."""
        if self.ended is not None:
            return None
        track = self.tracks.get(track_id) or self._open(track_id, kind, participant)
        return track.writer.encoder.start if track is not None else None

    def _keeps(self, track: _Track, ssrc: int, layer: int | None, now: float) -> bool:
        """Whether ``ssrc``'s packets are the track's now (switching to it when they are the better layer)."""
        if ssrc != track.ssrc:
            if layer == -2:
                return False
            if (layer is not None and track.ssrc is not None and layer <= track.layer
                    and now - track.last_seen < LAYER_QUIET):
                return False  # a lower layer while the kept one still comes
            track.ssrc, track.layer, track.keyframe = ssrc, layer or 0, track.kind == "audio"
        track.last_seen = now
        return True

    def _await_keyframe(self, track: _Track, track_id: str, ssrc: int, now: float, first: bool, any_: bool) -> None:
        """Packets of a track with no key frame yet: ``first`` whether the first of them starts one,
        ``any_`` whether one of them does; asks for one (at most every KEYFRAME_INTERVAL) unless the
        first does, as a packet at a time would."""
        if not first and now - track.asked >= KEYFRAME_INTERVAL:
            track.asked = now
            self.request_keyframe(track_id, ssrc)
        track.keyframe = any_

    def sender_report(self, track_id: str, ssrc: int, ntp: int, rtp: int) -> None:
        """A sender report of ``track_id``'s publisher (kept for the kept SSRC only)."""
        track = self.tracks.get(track_id)
        if self.ended is not None or track is None or ssrc != track.ssrc:
            return
        try:
            record = track.writer.encoder.sender_report(self.clock(), ssrc, ntp, rtp)
        except TrackFileError:
            return
        self._append(track, record)

    def _append(self, track: _Track, records: bytes) -> None:
        """Buffer ``records`` (whole records) for the track's file; the quota ends the recording before
        the first record that would pass it."""
        if self.bytes + len(records) > self.quota:
            fit = _whole_records(records, self.quota - self.bytes)
            if fit:
                self.bytes += fit
                track.writer.append(records[:fit])
            self.end("quota", f"the recording reached its quota of {self.quota} bytes")
            return
        self.bytes += len(records)
        track.writer.append(records)
        if track.writer.pending > MAX_BUFFERED:
            self.flush()

    def _open(self, track_id: str, kind: str, participant: str) -> _Track | None:
        if kind not in CODECS or len(self.tracks) >= MAX_TRACKS:
            return None
        name = f"{safe_id(participant)}.{safe_id(track_id)}"
        path = self.path / f"{name}{TRACK_SUFFIX}"
        for n in range(2, MAX_TRACKS + 2):  # the same ids again (published, gone, published)
            if not path.exists():
                break
            path = self.path / f"{name}.{n}{TRACK_SUFFIX}"
        header = TrackHeader(kind, CODECS[kind], CLOCK_RATES[kind], participant[:256] or "-", track_id[:256] or "-",
                             self.clock())
        try:
            writer = TrackWriter(path, header)
        except OSError as error:
            self.end("error", f"cannot create {path}: {error.strerror or error}")
            return None
        self.bytes += writer.pending
        track = self.tracks[track_id] = _Track(writer, kind)
        return track

    # -- the timer and the end -----------------------------------------------------------------
    def flush(self) -> None:
        """Append what every track buffered to its file; a write that fails ends the recording."""
        for track in self.tracks.values():
            try:
                track.writer.flush()
            except OSError as error:
                self.end("error", f"writing {track.writer.path} failed: {error.strerror or error}")
                return

    def end(self, reason: str, detail: str = "") -> dict[str, Any]:
        """Flush and close every track file (once) and tell ``on_end`` unless ``reason`` is "stopped";
        returns what was recorded."""
        if self.ended is None:
            self.ended = reason
            for track in self.tracks.values():
                try:
                    track.writer.close()
                except OSError:
                    pass  # the disk is full: what reached the file reads up to its last whole record
            if self.meta is not None:
                try:
                    self.write_meta({**self.meta, "ended": reason, "stopped": self.clock()})
                except OSError:
                    pass  # the disk is full: the recording reads as cut, its tracks as they are
            if reason != "stopped":
                self.on_end(reason, detail)
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {"recording": self.recording_id, "path": str(self.path), "tracks": len(self.tracks),
                "bytes": sum(t.writer.written for t in self.tracks.values()), "ended": self.ended or ""}


def _micros(wall: float) -> int:
    return round(wall * 1_000_000)


def _whole_records(records: bytes, room: int) -> int:
    """Bytes of the whole records at the start of ``records`` that fit in ``room``."""
    pos = 0
    while pos + 4 <= len(records):
        end = pos + 8 + int.from_bytes(records[pos:pos + 4], "big")  # length, then type and body, then CRC
        if end > room or end > len(records):
            break
        pos = end
    return pos


def _recording_dir(directory: str, room_id: str, recording_id: str) -> Path:
    """Make (and return) the recording's directory; RecordingError when ``directory`` is missing,
    not a directory, or not writable, or the recording exists already."""
    base = Path(directory)
    if not base.is_absolute():
        raise RecordingError(f"recording directory {directory!r} is not an absolute path")
    if not base.is_dir():
        raise RecordingError(f"recording directory {directory} does not exist or is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise RecordingError(f"recording directory {directory} is not writable")
    path = base / room_id / recording_id
    try:
        path.parent.mkdir(mode=0o750, exist_ok=True)
        path.mkdir(mode=0o750)
    except FileExistsError:
        raise RecordingError(f"recording {recording_id} exists already in {path.parent}") from None
    except OSError as error:
        raise RecordingError(f"cannot make {path}: {error.strerror or error}") from None
    return path
