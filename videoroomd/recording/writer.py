"""One track file being written: records buffered in memory, appended to the file on ``flush`` (sync).

No fsync per packet, no write per packet: the recorder flushes every track on
a timer, so a process killed between two flushes loses at most one interval,
and what reached the file reads up to its last whole record
(:func:`.trackfile.read_track`). Writes are plain ``os.write`` on a file opened
``O_APPEND``: a flush of a few kilobytes to the page cache does not block the
worker's loop in any way that matters.
"""

from __future__ import annotations

import os
from pathlib import Path

from .trackfile import TrackEncoder, TrackHeader, encode_header

MAX_BUFFERED = 4 * 1024 * 1024  # bytes held between two flushes before a flush is forced


class TrackWriter:
    """Appends records to the new track file ``path`` (refused if it exists: nothing is overwritten)."""

    def __init__(self, path: Path, header: TrackHeader):
        self.path = path
        self.encoder = TrackEncoder(header.start)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._buffer = bytearray(encode_header(header))
        self.written = 0  # bytes in the file

    @property
    def pending(self) -> int:
        """Bytes buffered, not yet in the file."""
        return len(self._buffer)

    def append(self, record: bytes) -> None:
        self._buffer += record

    def flush(self) -> int:
        """Write what is buffered; returns the bytes written. Raises OSError (disk full, ...): the
        buffer is then dropped, and what the file holds still reads up to its last whole record."""
        if self._fd is None or not self._buffer:
            return 0
        data, self._buffer = self._buffer, bytearray()
        view = memoryview(data)
        while view:
            count = os.write(self._fd, view)
            self.written += count
            view = view[count:]
        return len(data)

    def close(self) -> None:
        """Flush what is buffered (as far as the disk takes it) and close; safe twice."""
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = None
