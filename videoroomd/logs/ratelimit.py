"""Log lines a client can cause, rate-limited per kind: a flood of bad frames is a few lines, not a full disk.

:class:`LineBudget` is the pure decision (at most ``per_second`` lines per
kind in each one-second window, then silence); the first line of a kind
after a silence says how many lines were left out. :class:`ThrottledLog`
puts it in front of a structlog logger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

PER_SECOND = 5      # lines of one kind per second
MAX_KINDS = 1000    # kinds remembered at once; the code uses a handful, this is a backstop


@dataclass
class _Window:
    start: float
    lines: int = 0
    suppressed: int = 0


class LineBudget:
    """Decides, per kind, whether a line may be written now."""

    def __init__(self, per_second: int = PER_SECOND, clock: Callable[[], float] = time.monotonic):
        self.per_second = per_second
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def take(self, kind: str) -> int | None:
        """None when the line is to be left out; else how many lines of ``kind`` were left out before it."""
        now = self.clock()
        window = self._windows.get(kind)
        if window is None:
            if len(self._windows) >= MAX_KINDS:
                self._windows.clear()
            window = self._windows[kind] = _Window(now)
        if now - window.start >= 1.0:
            window.start, window.lines = now, 0
        if window.lines >= self.per_second:
            window.suppressed += 1
            return None
        window.lines += 1
        left_out, window.suppressed = window.suppressed, 0
        return left_out


class ThrottledLog:
    """A structlog logger whose lines are rate-limited by their event text (the kind).

    A line written after a silence carries ``suppressed=N``: the lines of
    its kind that were left out since the last one written.
    """

    def __init__(self, logger: Any, budget: LineBudget | None = None):
        self.logger = logger
        self.budget = budget or LineBudget()

    def _log(self, method: str, event: str, fields: dict[str, Any]) -> None:
        left_out = self.budget.take(event)
        if left_out is None:
            return
        if left_out:
            fields["suppressed"] = left_out
        getattr(self.logger, method)(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, fields)
