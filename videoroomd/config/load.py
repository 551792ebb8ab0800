"""Find, read and parse the configuration file."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError
from .lines import key_lines
from .toml_hints import syntax_hint
from .schema import BUILTIN_SOURCE, Config
from .validate import build_config

ENV_VAR = "VIDEOROOMD_CONFIG"
SYSTEM_PATH = Path("/etc/videoroomd/videoroomd.toml")
_DUPLICATE = re.compile(r"Cannot declare \('rooms', '([^']*)'\) twice \(at line (\d+)")
_AT_LINE = re.compile(r"^(?P<what>.*?)\s*\(at line (?P<line>\d+), column \d+\)$")


@dataclass(frozen=True)
class Location:
    """Where the configuration comes from: a file, or the default built into the package."""

    path: Path | None  # None: the built-in default

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else BUILTIN_SOURCE


def builtin_text() -> str:
    return resources.files("videoroomd.config").joinpath("default.toml").read_text(encoding="utf-8")


def locate(explicit: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Location:
    """``--config``, else ``$VIDEOROOMD_CONFIG``, else /etc/videoroomd/videoroomd.toml, else built in.

    An explicitly named file is used even if it is missing (so that the error
    says so); the system path is used only when it exists.
    """
    environ = os.environ if environ is None else environ
    if explicit:
        return Location(Path(explicit))
    if environ.get(ENV_VAR):
        return Location(Path(environ[ENV_VAR]))
    if SYSTEM_PATH.exists():
        return Location(SYSTEM_PATH)
    return Location(None)


def read_text(location: Location) -> str:
    """The file's text; raises ConfigError when it is missing, unreadable or empty."""
    if location.path is None:
        return builtin_text()
    path = location.path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(path, "no such file") from None
    except IsADirectoryError:
        raise ConfigError.single(path, "is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError.single(path, "cannot be read (permission denied)") from None
    except UnicodeDecodeError as error:
        raise ConfigError.single(path, f"is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ConfigError.single(path, f"cannot be read ({error.strerror})") from None
    if not text.strip():
        raise ConfigError.single(path, "is empty; a config needs at least one [rooms.NAME] table or [server] dynamic_rooms = true")
    return text


def parse(text: str, source: str, root: Path) -> Config:
    """Parse and validate TOML ``text``; raises ConfigError with every problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        duplicate = _DUPLICATE.search(message)
        if duplicate:
            raise ConfigError.single(
                source, f"room '{duplicate.group(1)}' is defined twice", key=f"rooms.{duplicate.group(1)}",
                line=int(duplicate.group(2)),
            ) from None
        at = _AT_LINE.match(message)
        if at:
            number = int(at.group("line"))
            lines = text.splitlines()
            hint = syntax_hint(at.group("what"), lines[number - 1] if number <= len(lines) else None)
            raise ConfigError.single(source, f"invalid TOML: {at.group('what')}" + (f" ({hint})" if hint else ""),
                                     line=number) from None
        hint = syntax_hint(message, None)
        raise ConfigError.single(source, f"invalid TOML: {message}" + (f" ({hint})" if hint else "")) from None
    config = build_config(document, source=source, root=root, lines=key_lines(text))
    if not config.rooms and not config.server.dynamic_rooms:
        raise ConfigError.single(source, "no rooms: add a [rooms.NAME] table, or set [server] dynamic_rooms = true", key="rooms")
    return config


def load(location: Location) -> Config:
    """Read, parse and validate the configuration at ``location``; raises ConfigError."""
    text = read_text(location)
    root = location.path.resolve().parent if location.path is not None else Path.cwd()
    return parse(text, location.name, root)
