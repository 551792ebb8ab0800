"""Turn a parsed TOML document into a :class:`Config`, collecting every problem.

Pure and synchronous, apart from reading the certificate files a config
names (an unreadable certificate is a config error, found before start).
Which keys there are and how each value is checked is :mod:`.keys`; the
defaults are the schema's (:mod:`.schema`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..certs import pem
from .errors import ConfigError, Problem
from .keys import AUTH, CLUSTER, ICE, LOG, MEDIA, RECORDING, ROOM, SERVER, TURN, WEBHOOKS, Key
from .lines import line_of
from .schema import (AuthConfig, ClusterConfig, Config, IceConfig, LogConfig, MediaConfig, RecordingConfig, RoomConfig,
                     ServerConfig, TurnConfig, WebhooksConfig)
from .values import Invalid, describe

# The one rule for room names, wherever a name comes from: the config file, a Phoenix
# topic, a relay path, a dynamic room. \Z, not $: "$" would let a trailing newline in.
ROOM_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
ROOM_NAME_RULE = "a room name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def is_room_name(name: object) -> bool:
    """Whether ``name`` may name a room (see ROOM_NAME_RULE)."""
    return isinstance(name, str) and ROOM_NAME.match(name) is not None


class _Collector:
    """Problems found so far, each placed at its key's line."""

    def __init__(self, file: str, lines: dict[tuple[str, ...], int]):
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: tuple[str, ...], message: str) -> None:
        self.problems.append(Problem(self.file, ".".join(path), message, line_of(self.lines, path)))


class _Table:
    """One TOML table being read: typed getters, then ``finish`` flags unknown keys."""

    def __init__(self, data: Any, path: tuple[str, ...], out: _Collector):
        self.path = path
        self.out = out
        if data is None:
            data = {}
        if not isinstance(data, dict):
            out.add(path, f"expected a table, got {describe(data)}")
            data = {}
        self.data = dict(data)
        self.known: list[str] = []

    def take(self, key: str, default: Any, convert: Callable[[Any, tuple[str, ...]], Any]) -> Any:
        """The value of ``key`` converted, or ``default`` if absent or invalid."""
        self.known.append(key)
        if key not in self.data:
            return default
        raw = self.data.pop(key)
        try:
            return convert(raw, self.path + (key,))
        except Invalid as invalid:
            self.out.add(self.path + (key,), str(invalid))
            return default

    def finish(self, extra_known: tuple[str, ...] = ()) -> None:
        for key in self.data:
            hint = difflib.get_close_matches(key, self.known + list(extra_known), n=1, cutoff=0.6)
            if hint:
                message = f"unknown key; did you mean '{hint[0]}'?"
            else:
                message = f"unknown key (known keys here: {', '.join(self.known + list(extra_known))})"
            self.out.add(self.path + (key,), message)


def _read(table: _Table, keys: tuple[Key, ...], base: Any, root: Path, fresh: set[str] = frozenset()) -> dict[str, Any]:
    """The dataclass arguments ``keys`` give: each value from ``table``, else ``base``'s (None for ``fresh`` keys).

    A relative path is taken from ``root``, the config file's folder.
    """
    out: dict[str, Any] = {}
    for key in keys:
        value = table.take(key.name, None if key.name in fresh else key.default(base), key.convert)
        if isinstance(value, Path) and not value.is_absolute():
            value = root / value
        key.set(out, value)
    return out


def _read_with_pair(table: _Table, keys: tuple[Key, ...], base: Any, root: Path, pair: tuple[str, str]) -> dict[str, Any]:
    """As :func:`_read`, with the certificate and key of ``pair`` set together or not at all (else ``base``'s)."""
    given = set(pair) & set(table.data)
    out = _read(table, keys, base, root, fresh=set(pair) if given else set())
    if given:
        cert_key, key_key = pair
        out[cert_key], out[key_key] = _check_pair(table, cert_key, key_key, out[cert_key], out[key_key])
    return out


def _check_pair(
    table: _Table, cert_key: str, key_key: str, cert: Path | None, key: Path | None
) -> tuple[Path | None, Path | None]:
    """Both or neither, each readable PEM, and the key matching the certificate."""
    out, path = table.out, table.path
    if (cert is None) != (key is None):
        present, absent = (cert_key, key_key) if cert is not None else (key_key, cert_key)
        out.add(path + (present,), f"{present} is set but {absent} is not; set both or neither")
        return None, None
    if cert is None or key is None:
        return None, None
    ok = True
    try:
        certificate = pem.load_certificate(cert)
    except pem.PemError as error:
        out.add(path + (cert_key,), str(error))
        ok = False
    try:
        private_key = pem.load_private_key(key)
    except pem.PemError as error:
        out.add(path + (key_key,), str(error))
        ok = False
    if ok and not pem.key_matches(certificate, private_key):
        out.add(path + (key_key,), f"the key in {key} does not belong to the certificate in {cert}")
        ok = False
    return (cert, key) if ok else (None, None)


def _room_settings(table: _Table, base: RoomConfig, root: Path) -> RoomConfig:
    return RoomConfig(name=base.name, **_read_with_pair(table, ROOM, base, root, ("dtls_cert", "dtls_key")))


def _check_access(room: RoomConfig, path: tuple[str, ...], auth: AuthConfig, out: _Collector) -> None:
    """A room's access must be one it can be opened by: a password room needs its password, a token room a key."""
    if room.access == "password" and room.password is None:
        out.add(path + ("access",), 'access = "password" needs a password; set one, or access = "open"')
    if room.access == "token" and not auth.keys:
        out.add(path + ("access",), 'access = "token" needs [auth] keys to check the tokens with')


# What a room made through the server API may set: no paths on this machine, no servers.
API_ROOM_KEYS = ("max_peers", "password", "access", "simulcast", "max_video_bitrate", "moderator_password",
                 "self_unmute", "lobby")


def room_from_settings(settings: Any, base: RoomConfig, auth: AuthConfig, *, source: str) -> RoomConfig:
    """A room's settings as the server API was sent them (``settings``: a JSON object of room keys, each
    checked as in the file), over ``base``; raises ConfigError naming each wrong key under ``source``."""
    out = _Collector(source, {})
    table = _Table(settings, ("settings",), out)
    values = _read(table, tuple(key for key in ROOM if key.name in API_ROOM_KEYS), base, Path("/"))
    table.finish()
    room = replace(base, **values)
    _check_access(room, ("settings",), auth, out)
    if out.problems:
        raise ConfigError(out.problems)
    return room


def _check_recording(room: RoomConfig, path: tuple[str, ...], recording: RecordingConfig, out: _Collector) -> None:
    """A room that records needs the directory its recordings go to."""
    if room.recording != "off" and recording.directory is None:
        out.add(path + ("recording",), f'recording = "{room.recording}" needs [recording] directory')


def _section(top: _Table, name: str, out: _Collector, read: Callable[[_Table], Any]) -> Any:
    table = _Table(top.take(name, {}, lambda v, p: v), (name,), out)
    result = read(table)
    table.finish()
    return result


def build_config(document: dict[str, Any], *, source: str, root: Path, lines: dict[tuple[str, ...], int]) -> Config:
    """Validate a parsed TOML ``document``; relative paths are taken from ``root``.

    Returns the :class:`Config`; raises :class:`ConfigError` listing every problem.
    """
    out = _Collector(source, lines)
    top = _Table(document, (), out)
    server = _section(top, "server", out, lambda t: ServerConfig(
        **_read_with_pair(t, SERVER, ServerConfig(), root, ("tls_cert", "tls_key"))))
    ice = _section(top, "ice", out, lambda t: IceConfig(**_read(t, ICE, IceConfig(), root)))
    media = _section(top, "media", out, lambda t: MediaConfig(**_read(t, MEDIA, MediaConfig(), root)))

    def read_turn(table: _Table) -> TurnConfig:
        turn = TurnConfig(**_read(table, TURN, TurnConfig(), root))
        if turn.tls_port is not None and server.tls_cert is None:
            out.add(("turn", "tls_listen"), "TURN over TLS needs the server's certificate: set [server] tls_cert and tls_key")
        return turn

    turn = _section(top, "turn", out, read_turn)
    log = _section(top, "log", out, lambda t: LogConfig(**_read(t, LOG, LogConfig(), root)))

    def read_cluster(table: _Table) -> ClusterConfig:
        redis_given = "redis" in table.data
        cluster = ClusterConfig(**_read(table, CLUSTER, ClusterConfig(), root))
        if cluster_given and not redis_given:
            out.add(("cluster", "redis"), "a [cluster] table needs redis, the URL of the Redis server the nodes share")
        return cluster

    cluster_given = isinstance(top.data.get("cluster"), dict)

    cluster = _section(top, "cluster", out, read_cluster)
    auth = _section(top, "auth", out, lambda t: AuthConfig(**_read(t, AUTH, AuthConfig(), root)))

    def read_webhooks(table: _Table) -> WebhooksConfig:
        key_given = "key" in table.data
        webhooks = WebhooksConfig(**_read(table, WEBHOOKS, WebhooksConfig(), root))
        if webhooks.urls and not key_given:
            out.add(("webhooks", "key"), "[webhooks] urls needs key, the secret the requests are signed with")
        return webhooks

    webhooks = _section(top, "webhooks", out, read_webhooks)
    recording = _section(top, "recording", out, lambda t: RecordingConfig(**_read(t, RECORDING, RecordingConfig(), root)))
    defaults = _section(top, "defaults", out, lambda t: _room_settings(t, RoomConfig(name=""), root))
    _check_access(defaults, ("defaults",), auth, out)
    _check_recording(defaults, ("defaults",), recording, out)

    rooms_table = _Table(top.take("rooms", {}, lambda v, p: v), ("rooms",), out)
    rooms: dict[str, RoomConfig] = {}
    for name, body in rooms_table.data.items():
        path = ("rooms", name)
        if not is_room_name(name):
            out.add(path, ROOM_NAME_RULE)
            continue
        room_table = _Table(body, path, out)
        rooms[name] = _room_settings(room_table, defaults.named(name), root)
        _check_access(rooms[name], path, auth, out)
        _check_recording(rooms[name], path, recording, out)
        room_table.finish()
    rooms_table.data = {}
    top.finish()

    if out.problems:
        raise ConfigError(out.problems)
    return Config(source=source, server=server, ice=ice, media=media, turn=turn, log=log, cluster=cluster, auth=auth,
                  webhooks=webhooks, recording=recording, defaults=defaults, rooms=rooms)
