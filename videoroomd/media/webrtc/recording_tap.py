"""Where a room's recording meets its packet path in the media worker (asyncio side).

:class:`RecordingTap` is one per room (``RoomMedia.recording``). It always
knows the room's published tracks (kind, publisher, simulcast layers learnt
from the RIDs, as the data plane learns them) so that a recording started
mid-call keeps the highest layer at once. While no recording runs, a packet
costs one attribute test; while one runs, each packet goes to the
:class:`~videoroomd.recording.recorder.RoomRecorder` before the data plane
forwards it (nothing a subscriber receives changes), and its files are
flushed every ``FLUSH_INTERVAL`` seconds by a task the tap owns.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import structlog

from ...recording.recorder import RecordingError, RoomRecorder
from ..dataplane.layers import RidTable

log = structlog.get_logger("videoroomd.media.recording")

FLUSH_INTERVAL = 1.0   # seconds between two flushes of the track files (what a kill can lose)
UNKNOWN_LAYER = -2     # a simulcast packet of an SSRC whose RID is not known yet


class RecordingTap:
    """One room's recording switch: ``packet``/``sender_report``/``learn`` come from its publishers'
    receive paths; ``start``/``stop`` from the worker's commands."""

    def __init__(self, ask_keyframe: Callable[[str, int], None], on_end: Callable[[str, str, str], None]):
        self.ask_keyframe = ask_keyframe  # (track id, SSRC)
        self.on_end = on_end              # (recording id, reason, detail): it ended by itself
        self.recorder: RoomRecorder | None = None
        self.tracks: dict[str, tuple[str, str]] = {}   # track id -> (kind, publishing endpoint)
        self.layers: dict[str, RidTable] = {}          # simulcast track id -> its SSRCs' layers
        self._flusher: asyncio.Task | None = None

    # -- what the room publishes -------------------------------------------------------------
    def publisher(self, track_id: str, kind: str, endpoint_id: str, rids: list[str] | None) -> None:
        self.tracks[track_id] = (kind, endpoint_id)
        if rids:
            self.layers[track_id] = RidTable(rids)
        else:
            self.layers.pop(track_id, None)

    def publisher_gone(self, track_id: str) -> None:
        self.tracks.pop(track_id, None)
        self.layers.pop(track_id, None)

    def learn(self, track_id: str, ssrc: int, rid: str | None, repaired_rid: str | None) -> None:
        table = self.layers.get(track_id)
        if table is not None:
            table.learn(ssrc, rid, repaired_rid)

    # -- the packet path ---------------------------------------------------------------------
    def packet(self, track_id: str, packet: Any) -> None:
        """A decrypted packet of ``track_id``, before it is forwarded. Never raises: a recording
        that fails ends, the call goes on."""
        recorder = self.recorder
        if recorder is None:
            return
        known = self.tracks.get(track_id)
        if known is None:
            return
        try:
            recorder.packet(track_id, known[0], known[1], self._layer(track_id, packet.ssrc), packet)
        except Exception as error:
            self._failed(recorder, error)

    def records(self, track_id: str, ssrc: int, records: bytes, count: int, keyframe: int, start_us: int) -> None:
        """``count`` packets of ``track_id``'s ``ssrc`` the data plane made track-file records of
        (arrival from ``start_us``; the ``keyframe``-th the first to start a key frame, -1: none), as
        ``packet`` for each. Never raises."""
        recorder = self.recorder
        if recorder is None or track_id not in self.tracks:
            return
        try:
            recorder.records(track_id, self._layer(track_id, ssrc), ssrc, records, count, keyframe, start_us)
        except Exception as error:
            self._failed(recorder, error)

    def track_start(self, track_id: str) -> float | None:
        """The start of ``track_id``'s file in the running recording (made now if it was not); None
        while none runs or it cannot have one. Never raises."""
        recorder = self.recorder
        known = self.tracks.get(track_id)
        if recorder is None or known is None:
            return None
        try:
            return recorder.track_start(track_id, known[0], known[1])
        except Exception as error:
            self._failed(recorder, error)
            return None

    def _layer(self, track_id: str, ssrc: int) -> int | None:
        table = self.layers.get(track_id)
        if table is None:
            return None
        layer = table.layer_of(ssrc)
        return UNKNOWN_LAYER if layer is None else layer

    def sender_report(self, track_id: str, ssrc: int, ntp: int, rtp: int) -> None:
        recorder = self.recorder
        if recorder is not None:
            try:
                recorder.sender_report(track_id, ssrc, ntp, rtp)
            except Exception as error:
                self._failed(recorder, error)

    def _failed(self, recorder: RoomRecorder, error: Exception) -> None:
        log.warning("recording a packet failed; the recording ends", exc_info=error)
        recorder.end("error", f"{type(error).__name__}: {error}")

    # -- the commands ------------------------------------------------------------------------
    def start(self, directory: str, room_id: str, recording_id: str, quota: int, meta: dict[str, str]) -> str:
        """Start recording into ``directory/room_id/recording_id``; returns that path. Raises
        RecordingError (one runs already, the directory is missing or not writable, bad ids)."""
        if self.recorder is not None:
            raise RecordingError(f"recording {self.recorder.recording_id} runs already in this room")
        if quota <= 0:
            raise RecordingError(f"the recording quota must be a positive number of bytes, not {quota}")
        recorder = RoomRecorder(directory, room_id, recording_id, quota, self.ask_keyframe,
                                lambda reason, detail: self._ended(recording_id, reason, detail))
        try:
            recorder.write_meta(dict(meta))
        except OSError as error:
            raise RecordingError(f"cannot write to {recorder.path}: {error.strerror or error}") from None
        self.recorder = recorder
        self._flusher = asyncio.ensure_future(self._flush_every(recorder))
        log.info("recording started", recording=recording_id, path=str(recorder.path))
        return str(recorder.path)

    def stop(self) -> dict[str, Any]:
        """End the running recording; returns what it recorded. Raises RecordingError when none runs."""
        recorder = self.recorder
        if recorder is None:
            raise RecordingError("no recording runs in this room")
        self._detach()
        summary = recorder.end("stopped")
        log.info("recording stopped", **summary)
        return summary

    def _ended(self, recording_id: str, reason: str, detail: str) -> None:
        """The recorder ended by itself (quota, a write that failed)."""
        log.warning("recording ended", recording=recording_id, reason=reason, detail=detail)
        self._detach()
        self.on_end(recording_id, reason, detail)

    def _detach(self) -> None:
        self.recorder = None
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None

    async def _flush_every(self, recorder: RoomRecorder) -> None:
        """Flush ``recorder``'s files every FLUSH_INTERVAL until it ends (cancelled by ``_detach``)."""
        while recorder.ended is None:
            await asyncio.sleep(FLUSH_INTERVAL)
            started = time.monotonic()
            recorder.flush()
            spent = time.monotonic() - started
            if spent > 0.05:
                log.info("flushing the recording was slow", seconds=round(spent, 3))

    def close(self) -> None:
        """The room closes: a running recording ends as if stopped (its files whole)."""
        if self.recorder is not None:
            self.stop()
