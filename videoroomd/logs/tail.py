"""Read the daemon's JSON-lines log: last lines, filters, pretty printing, follow across rotation."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

LEVELS = ("debug", "info", "warning", "error", "critical")
FOLLOW_POLL = 0.25  # seconds between looks at a followed file
_FIRST_KEYS = ("timestamp", "level", "event", "logger", "room", "peer")


@dataclass(frozen=True)
class Filter:
    room: str | None = None
    peer: str | None = None
    level: str | None = None  # minimum level

    def accepts(self, record: dict | None) -> bool:
        if record is None:  # not a JSON line: shown only when nothing is filtered
            return self.room is None and self.peer is None and self.level is None
        if self.room is not None and record.get("room") != self.room:
            return False
        if self.peer is not None and record.get("peer") != self.peer:
            return False
        if self.level is not None:
            level = str(record.get("level", "info")).lower()
            rank = LEVELS.index(level) if level in LEVELS else 0
            if rank < LEVELS.index(self.level):
                return False
        return True


def parse_line(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def pretty(record: dict) -> str:
    """One readable line: time, level, event, then room/peer and the other fields."""
    stamp = str(record.get("timestamp", "")).replace("T", " ")
    level = str(record.get("level", "")).upper()
    parts = [stamp[:23], f"{level:<7}", str(record.get("event", ""))]
    for key in ("room", "peer"):
        if key in record:
            parts.append(f"{key}={record[key]}")
    for key, value in record.items():
        if key in _FIRST_KEYS or key == "exception":
            continue
        parts.append(f"{key}={value if isinstance(value, str) else json.dumps(value)}")
    text = " ".join(p for p in parts if p)
    if "exception" in record:
        text += "\n" + str(record["exception"])
    return text


def render(line: str, keep: Filter, as_json: bool) -> str | None:
    record = parse_line(line)
    if not keep.accepts(record):
        return None
    if as_json or record is None:
        return line
    return pretty(record)


def last_lines(file: TextIO, count: int, keep: Callable[[str], bool] = lambda line: True) -> list[str]:
    """The last ``count`` lines of ``file`` that ``keep`` accepts (the last N about a room, not
    the lines about it among the last N)."""
    if count <= 0:
        return []
    return list(deque((line for line in (raw.rstrip("\n") for raw in file) if keep(line)), maxlen=count))


def _follow(path: Path, file: TextIO, sleep: Callable[[float], None], stop: Callable[[], bool]) -> Iterator[str]:
    inode = os.fstat(file.fileno()).st_ino
    pending = ""
    while not stop():
        chunk = file.readline()
        if chunk:
            pending += chunk
            if pending.endswith("\n"):
                yield pending.rstrip("\n")
                pending = ""
            continue
        # At the end: was the file rotated away or truncated?
        try:
            st = os.stat(path)
        except FileNotFoundError:
            sleep(FOLLOW_POLL)
            continue
        if st.st_ino != inode or st.st_size < file.tell():
            file.close()
            file = open(path, encoding="utf-8", errors="replace")
            inode = os.fstat(file.fileno()).st_ino
            continue
        sleep(FOLLOW_POLL)
    file.close()


def tail(path: Path, count: int, follow: bool, *, sleep: Callable[[float], None] = time.sleep,
         stop: Callable[[], bool] = lambda: False, keep: Callable[[str], bool] = lambda line: True) -> Iterable[str]:
    """The last ``count`` lines of ``path`` that ``keep`` accepts, then (``follow``) every line
    written after (all of them: the caller filters those as it prints).

    Raises OSError when the file cannot be opened.
    """
    file = open(path, encoding="utf-8", errors="replace")
    yield from last_lines(file, count, keep)
    if follow:
        yield from _follow(path, file, sleep, stop)
    else:
        file.close()
