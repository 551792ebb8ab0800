"""The recordings on disk: list, find, measure, delete, reap the old ones (sync; run off the event loop).

Layout: ``DIRECTORY/ROOM_ID/RECORDING_ID/`` holds ``recording.json`` (the room's
name, who started it, when), one ``*.vrtrack`` per track
(:mod:`.trackfile`), and what an export made (``*.webm``). Every name here
is an id checked against :data:`ID`; nothing outside the directory is
reached, whatever a caller passes.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ID", "RecordingInfo", "find", "recordings", "reap_and_measure", "delete"]

ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
META = "recording.json"
TRACK_SUFFIX = ".vrtrack"
MAX_META = 64 * 1024  # bytes of recording.json read
PENDING = "export.pending"  # export_job.PENDING (that module starts processes; this one reads files)


@dataclass
class RecordingInfo:
    id: str
    room_id: str
    path: Path
    room: str = ""
    by: str = ""
    started: float = 0.0
    bytes: int = 0
    tracks: list[str] = field(default_factory=list)     # track file names
    exports: list[str] = field(default_factory=list)    # WebM file names
    participants: list[str] = field(default_factory=list)
    export_pending: bool = False  # an export started and did not finish (export_job.PENDING)
    ended: str = ""               # why it ended (recorder's reasons); "": it was cut (a worker killed) or runs

    def as_dict(self) -> dict:
        return {"id": self.id, "room": self.room, "by": self.by, "started": self.started, "bytes": self.bytes,
                "tracks": len(self.tracks), "participants": self.participants, "files": self.exports,
                "export_unfinished": self.export_pending, "ended": self.ended}


def _info(room_dir: Path, path: Path) -> RecordingInfo:
    info = RecordingInfo(path.name, room_dir.name, path)
    try:
        meta_path = path / META
        if meta_path.stat().st_size <= MAX_META:
            meta = json.loads(meta_path.read_text())
            if isinstance(meta, dict):
                info.room = str(meta.get("room", ""))[:64]
                info.by = str(meta.get("by", ""))[:128]
                started = meta.get("started")
                info.started = float(started) if isinstance(started, (int, float)) else 0.0
                info.ended = str(meta.get("ended", ""))[:16]
    except (OSError, ValueError):
        pass  # a recording without its meta (cut before it was written) is still listed
    participants = set()
    for item in sorted(path.iterdir()):
        if not item.is_file() or item.is_symlink():
            continue
        info.bytes += item.stat().st_size
        if item.name.endswith(TRACK_SUFFIX):
            info.tracks.append(item.name)
            participants.add(item.name.split(".", 1)[0])
        elif item.name.endswith(".webm"):
            info.exports.append(item.name)
        elif item.name == PENDING:
            info.export_pending = True
    info.participants = sorted(participants)
    if not info.started:
        info.started = path.stat().st_mtime
    return info


def _dirs(directory: Path):
    if not directory.is_dir():
        return
    for room_dir in sorted(directory.iterdir()):
        if not room_dir.is_dir() or room_dir.is_symlink() or not ID.fullmatch(room_dir.name):
            continue
        for path in sorted(room_dir.iterdir()):
            if path.is_dir() and not path.is_symlink() and ID.fullmatch(path.name):
                yield room_dir, path


def recordings(directory: Path, room: str | None = None) -> list[RecordingInfo]:
    """Every recording in ``directory`` (of room ``room`` only, when given), oldest first."""
    found = [_info(room_dir, path) for room_dir, path in _dirs(Path(directory))]
    if room is not None:
        found = [info for info in found if info.room == room]
    return sorted(found, key=lambda info: (info.started, info.id))


def find(directory: Path, recording_id: str) -> RecordingInfo | None:
    """The recording ``recording_id`` (an id, or None for anything else), or None."""
    if not isinstance(recording_id, str) or not ID.fullmatch(recording_id):
        return None
    for room_dir, path in _dirs(Path(directory)):
        if path.name == recording_id:
            return _info(room_dir, path)
    return None


def delete(directory: Path, recording_id: str) -> bool:
    """Delete the recording ``recording_id``; False when there is none."""
    info = find(directory, recording_id)
    if info is None:
        return False
    shutil.rmtree(info.path)
    return True


def reap_and_measure(directory: Path, keep_days: int, now: float) -> int:
    """Delete the recordings older than ``keep_days`` (0: none) and return the bytes the rest take."""
    total = 0
    for info in recordings(directory):
        if keep_days and now - info.started > keep_days * 86400:
            shutil.rmtree(info.path, ignore_errors=True)
            continue
        total += info.bytes
    return total
