"""Configure structlog and the stdlib loggers once, at start.

Every line goes through one chain: context variables (``room``, ``peer``)
merged first, secrets redacted, then rendered by the console renderer on a
terminal or as JSON lines otherwise. ``[log] file`` adds a JSON-lines file
through a ``WatchedFileHandler``, which reopens the file when logrotate
moves it away.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
SECRET_KEYS = frozenset({"password", "credential", "admin_token", "token", "secret", "key_pem"})
# Loggers of libraries that speak through us; chatty ones are kept at warning.
QUIET_LOGGERS = {"aioice": logging.WARNING, "aiortc": logging.WARNING, "trio-websocket": logging.WARNING}


class LogFileHandler(logging.handlers.WatchedFileHandler):
    """The log file, reopened when logrotate moves it away; one that cannot be reopened
    (its directory gone, a directory in its place) is said so once on stderr, and its
    lines go to stderr only until it can be: a log call never raises."""

    unavailable = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reopenIfNeeded()
        except OSError as error:
            if not self.unavailable:
                self.unavailable = True
                sys.stderr.write(f"videoroomd: log file {self.baseFilename} cannot be reopened "
                                 f"({error.strerror or error}); its lines go to stderr only until it can\n")
            return
        if self.stream is None:
            return
        self.unavailable = False
        logging.FileHandler.emit(self, record)


class LogSetupError(Exception):
    """The log could not be set up (e.g. the log file cannot be opened)."""


def redact_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any secret-looking key, at any depth of dicts."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (REDACTED if k in SECRET_KEYS else clean(v)) for k, v in value.items()}
        return value

    return {k: (REDACTED if k in SECRET_KEYS else clean(v)) for k, v in event.items()}


def _lead_with_essentials(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Put time, level and message first, so a JSON line reads left to right."""
    first = {k: event[k] for k in ("timestamp", "level", "event", "logger", "room", "peer") if k in event}
    return {**first, **{k: v for k, v in event.items() if k not in first}}


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def _formatter(renderer: Any) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors() + [structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _lead_with_essentials,
            renderer,
        ],
    )


def configure(level: str = "info", fmt: str = "auto", file: Path | None = None, stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr) and ``file``.

    Raises LogSetupError when ``file`` cannot be opened for appending.
    """
    stream = sys.stderr if stream is None else stream
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    json_renderer = structlog.processors.JSONRenderer(sort_keys=False)
    console = structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)())

    handlers: list[logging.Handler] = []
    to_stream = logging.StreamHandler(stream)
    to_stream.setFormatter(_formatter(console if fmt == "console" else json_renderer))
    handlers.append(to_stream)
    if file is not None:
        try:
            to_file = LogFileHandler(file, encoding="utf-8")
        except OSError as error:
            reason = error.strerror or str(error)
            raise LogSetupError(f"cannot open log file {file}: {reason}") from None
        to_file.setFormatter(_formatter(json_renderer))
        handlers.append(to_file)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level.upper())))

    structlog.configure(
        processors=_shared_processors()
        + [
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
