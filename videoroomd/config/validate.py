"""Turn a parsed TOML document into a :class:`Config`, collecting every problem.

Pure and synchronous, apart from reading the certificate files a config
names (an unreadable certificate is a config error, found before start).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, Problem
from .lines import line_of
from .schema import (
    Config,
    IceConfig,
    MediaConfig,
    IceServerUrl,
    LogConfig,
    RoomConfig,
    ServerConfig,
    TurnConfig,
    TurnServer,
)
from ..certs import pem
from ..http.hosts import split_host

MAX_PEERS_RANGE = (1, 1000)
# The one rule for room names, wherever a name comes from: the config file, a Phoenix
# topic, a relay path, a dynamic room. \Z, not $: "$" would let a trailing newline in.
ROOM_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
ROOM_NAME_RULE = "a room name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_ICE_URL = re.compile(
    r"^(?P<scheme>stuns?|turns?):(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:?\[\]/]+))(?::(?P<port>\d+))?(?:\?(?P<query>.*))?$"
)
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")
ROOM_KEYS = ("max_peers", "password", "stun_servers", "turn_servers", "dtls_cert", "dtls_key", "simulcast",
             "max_video_bitrate")
VIDEO_BITRATE_RANGE = (100_000, 100_000_000)  # bits/s: below, not even the lowest layer fits; above, no uplink
_BITRATE = re.compile(r"\A([0-9]{1,9})(k|M)?\Z")


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
            out.add(path, f"expected a table, got {_describe(data)}")
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
        except _Invalid as invalid:
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


class _Invalid(Exception):
    pass


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _string(value: Any, _path: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _nonempty_string(value: Any, path: tuple[str, ...]) -> str:
    text = _string(value, path)
    if not text:
        raise _Invalid("must not be empty")
    return text


def _boolean(value: Any, _path: tuple[str, ...]) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


def _integer(low: int, high: int) -> Callable[[Any, tuple[str, ...]], int]:
    def convert(value: Any, _path: tuple[str, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Invalid(f"expected an integer from {low} to {high}, got {_describe(value)}")
        return value

    return convert


def _seconds(low: float, high: float) -> Callable[[Any, tuple[str, ...]], float]:
    def convert(value: Any, _path: tuple[str, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise _Invalid(f"expected a number of seconds from {low:g} to {high:g}, got {_describe(value)}")
        return float(value)

    return convert


def parse_bitrate(value: Any) -> int:
    """A bit rate in bits/s from an integer or a string such as "2500k" or "2M" (k = 1000,
    M = 1000000); raises ValueError saying what it expected."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _BITRATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'expected bits per second: an integer, or a string such as "2500k" or "2M", got {_describe(value)}')
    return int(match.group(1)) * {None: 1, "k": 1000, "M": 1_000_000}[match.group(2)]


def _video_bitrate(value: Any, _path: tuple[str, ...]) -> int:
    try:
        bits = parse_bitrate(value)
    except ValueError as error:
        raise _Invalid(str(error)) from None
    low, high = VIDEO_BITRATE_RANGE
    if not low <= bits <= high:
        raise _Invalid(f"expected from {low} (100k) to {high} (100M) bits per second, got {_describe(value)}")
    return bits


def _workers(value: Any, _path: tuple[str, ...]) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 256):
        return value
    raise _Invalid(f'expected "auto" or a number of worker processes from 0 to 256, got {_describe(value)}')


def _choice(options: tuple[str, ...]) -> Callable[[Any, tuple[str, ...]], str]:
    def convert(value: Any, path: tuple[str, ...]) -> str:
        text = _string(value, path)
        if text not in options:
            raise _Invalid(f"expected one of {', '.join(repr(o) for o in options)}, got {text!r}")
        return text

    return convert


def _array_of(item: Callable[[Any, tuple[str, ...]], Any], expected: str = "an array") -> Callable[[Any, tuple[str, ...]], tuple]:
    """A converter for an array whose items ``item`` converts; errors name the item's position."""

    def convert(value: Any, path: tuple[str, ...]) -> tuple:
        if not isinstance(value, list):
            raise _Invalid(f"expected {expected}, got {_describe(value)}")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element, path))
            except _Invalid as invalid:
                raise _Invalid(f"item {index + 1}: {invalid}") from None
        return tuple(out)

    return convert


def _ip_address(value: Any, path: tuple[str, ...]) -> str:
    text = _string(value, path)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _Invalid(f"expected an IPv4 or IPv6 address, got {text!r}") from None


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port``; raises ValueError with a readable reason."""
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]+):(?P<port4>\d+)", text)
    if not match:
        raise ValueError(f"expected HOST:PORT (e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"), got {text!r}")
    host = match.group("v6") or match.group("host")
    port = int(match.group("port") or match.group("port4"))
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be from 0 to 65535, got {port}")
    if match.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif not _HOSTNAME.match(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not a host name or address") from None
    return host, port


def _listen(value: Any, path: tuple[str, ...]) -> tuple[str, int]:
    try:
        return parse_listen(_string(value, path))
    except ValueError as error:
        raise _Invalid(str(error)) from None


def parse_ice_url(text: str, schemes: tuple[str, ...]) -> IceServerUrl:
    """Parse a STUN (RFC 7064) or TURN (RFC 7065) URL; raises ValueError saying why not."""
    match = _ICE_URL.match(text)
    if not match or match.group("scheme") not in schemes:
        example = "stun:stun.example.org:3478" if "stun" in schemes else "turn:turn.example.org:3478?transport=udp"
        raise ValueError(f"{text!r} is not a {'/'.join(schemes)} URL (e.g. \"{example}\")")
    scheme = match.group("scheme")
    host = match.group("v6") or match.group("host")
    if match.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    elif not _HOSTNAME.match(host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or address")
    secure = scheme.endswith("s")
    port = int(match.group("port")) if match.group("port") else (5349 if secure else 3478)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port must be from 1 to 65535")
    transport = "tcp" if secure else "udp"
    query = match.group("query")
    if query is not None:
        if scheme.startswith("stun"):
            raise ValueError(f"{text!r}: a STUN URL takes no query (RFC 7064)")
        q = re.fullmatch(r"transport=(udp|tcp)", query)
        if not q:
            raise ValueError(f"{text!r}: the only query a TURN URL takes is ?transport=udp or ?transport=tcp (RFC 7065)")
        transport = q.group(1)
    return IceServerUrl(scheme, host, port, transport)


def _stun_url(value: Any, path: tuple[str, ...]) -> IceServerUrl:
    try:
        return parse_ice_url(_string(value, path), ("stun", "stuns"))
    except ValueError as error:
        raise _Invalid(str(error)) from None


def _turn_server(value: Any, path: tuple[str, ...]) -> TurnServer:
    if not isinstance(value, dict):
        raise _Invalid(f'expected a table {{ urls = "turn:HOST:PORT", username = "...", credential = "..." }}, got {_describe(value)}')
    unknown = set(value) - {"urls", "username", "credential", "secret"}
    if unknown:
        raise _Invalid(f"unknown key {sorted(unknown)[0]!r} in a TURN server (known keys: urls, username, credential, secret)")
    if "secret" in value:
        if "username" in value or "credential" in value:
            raise _Invalid("a TURN server takes either secret (credentials made per join) or username and credential, not both")
        missing = [] if "urls" in value else ["urls"]
    else:
        missing = [k for k in ("urls", "username", "credential") if k not in value]
    if missing:
        raise _Invalid(f"a TURN server needs {', '.join(missing)} (or urls and secret)")
    raw_urls = value["urls"]
    if isinstance(raw_urls, str):
        raw_urls = [raw_urls]
    if not isinstance(raw_urls, list) or not raw_urls or not all(isinstance(u, str) for u in raw_urls):
        raise _Invalid("urls must be a TURN URL or a non-empty array of them")
    try:
        urls = tuple(parse_ice_url(u, ("turn", "turns")) for u in raw_urls)
    except ValueError as error:
        raise _Invalid(str(error)) from None
    if "secret" in value:
        secret = value["secret"]
        if not isinstance(secret, str) or not secret:
            raise _Invalid("secret must be a non-empty string")
        return TurnServer(urls, "", "", secret)
    username = value["username"]
    credential = value["credential"]
    if not isinstance(username, str) or not username:
        raise _Invalid("username must be a non-empty string")
    if not isinstance(credential, str) or not credential:
        raise _Invalid("credential must be a non-empty string")
    return TurnServer(urls, username, credential)


_turn_list = _array_of(_turn_server, "an array of tables")


def _udp_ports(value: Any, path: tuple[str, ...]) -> tuple[int, int]:
    """``"FIRST-LAST"`` (or ``[FIRST, LAST]``, as relay_ports), ports from 1024 to 65535."""
    if isinstance(value, str):
        first, dash, last = value.partition("-")
        if not (dash and first.strip().isdigit() and last.strip().isdigit()):
            raise _Invalid(f'expected "FIRST-LAST", a port range such as "50000-50100", got {_describe(value)}')
        low, high = int(first), int(last)
        if not 1024 <= low <= high <= 65535:
            raise _Invalid(f'expected "FIRST-LAST", two ports from 1024 to 65535 with FIRST <= LAST, got {_describe(value)}')
        return low, high
    return _port_range(value, path)


def _port_range(value: Any, _path: tuple[str, ...]) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1024 <= v <= 65535 for v in value)
            or value[0] > value[1]):
        raise _Invalid(f"expected [FIRST, LAST], two ports from 1024 to 65535 with FIRST <= LAST, got {_describe(value)}")
    return value[0], value[1]


def _realm(value: Any, path: tuple[str, ...]) -> str:
    text = _nonempty_string(value, path)
    if len(text) > 127 or not text.isprintable() or '"' in text:
        raise _Invalid("expected at most 127 printable characters without '\"'")
    return text


def _secret(value: Any, path: tuple[str, ...]) -> str:
    text = _string(value, path)
    if len(text) < 16:
        raise _Invalid(f"expected at least 16 characters (a guessable secret lets anyone relay), got {len(text)}")
    return text


def _origin(value: Any, path: tuple[str, ...]) -> str:
    text = _string(value, path).lower()
    if text != "*" and not re.fullmatch(r"https?://[^/\s]+", text):
        raise _Invalid(f'expected an origin like "https://meet.example.org" (scheme and host, no path) or "*", got {text!r}')
    # Browsers leave the scheme's default port out of Origin; so do we, so that the two compare equal.
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if text.startswith(scheme) and text.endswith(port):
            text = text[: -len(port)]
    return text


def _hostname(value: Any, path: tuple[str, ...]) -> str:
    text = _nonempty_string(value, path).strip().lower()
    if split_host(text) is None:
        raise _Invalid(f'expected a host name or address with an optional port, like "meet.example.org", '
                       f'"meet.example.org:8443" or "[2001:db8::1]", got {text!r}')
    return text


def _path_under(base: Path) -> Callable[[Any, tuple[str, ...]], Path]:
    def convert(value: Any, path: tuple[str, ...]) -> Path:
        text = _nonempty_string(value, path)
        candidate = Path(text).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    return convert


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
    max_peers = table.take("max_peers", base.max_peers, _integer(*MAX_PEERS_RANGE))
    password = table.take("password", base.password, _nonempty_string)
    stun = table.take("stun_servers", base.stun_servers, _array_of(_stun_url))
    turn = table.take("turn_servers", base.turn_servers, _turn_list)
    simulcast = table.take("simulcast", base.simulcast, _boolean)
    max_video_bitrate = table.take("max_video_bitrate", base.max_video_bitrate, _video_bitrate)
    cert_given = "dtls_cert" in table.data or "dtls_key" in table.data
    cert = table.take("dtls_cert", None, _path_under(root))
    key = table.take("dtls_key", None, _path_under(root))
    if cert_given:
        cert, key = _check_pair(table, "dtls_cert", "dtls_key", cert, key)
    else:
        cert, key = base.dtls_cert, base.dtls_key
    return RoomConfig(
        name=base.name,
        max_peers=max_peers,
        password=password,
        stun_servers=stun,
        turn_servers=turn,
        dtls_cert=cert,
        dtls_key=key,
        simulcast=simulcast,
        max_video_bitrate=max_video_bitrate,
    )


def build_config(document: dict[str, Any], *, source: str, root: Path, lines: dict[tuple[str, ...], int]) -> Config:
    """Validate a parsed TOML ``document``; relative paths are taken from ``root``.

    Returns the :class:`Config`; raises :class:`ConfigError` listing every problem.
    """
    out = _Collector(source, lines)
    top = _Table(document, (), out)

    server_table = _Table(top.take("server", {}, lambda v, p: v), ("server",), out)
    host, port = server_table.take("listen", ("127.0.0.1", 8080), _listen)
    tls_given = "tls_cert" in server_table.data or "tls_key" in server_table.data
    tls_cert = server_table.take("tls_cert", None, _path_under(root))
    tls_key = server_table.take("tls_key", None, _path_under(root))
    if tls_given:
        tls_cert, tls_key = _check_pair(server_table, "tls_cert", "tls_key", tls_cert, tls_key)
    server = ServerConfig(
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        drain_timeout=server_table.take("drain_timeout", 10.0, _seconds(0, 3600)),
        dynamic_rooms=server_table.take("dynamic_rooms", False, _boolean),
        max_dynamic_rooms=server_table.take("max_dynamic_rooms", 100, _integer(1, 100000)),
        max_frame_size=server_table.take("max_frame_size", 65536, _integer(1024, 16 * 1024 * 1024)),
        allowed_origins=server_table.take("allowed_origins", (), _array_of(_origin)),
        connections_per_second=server_table.take("connections_per_second", 20, _integer(1, 100000)),
        max_connections=server_table.take("max_connections", 1024, _integer(1, 1000000)),
        max_connections_per_address=server_table.take("max_connections_per_address", 64, _integer(1, 1000000)),
        hostnames=server_table.take("hostnames", None, _array_of(_hostname)),
        admin_token=server_table.take("admin_token", None, _nonempty_string),
    )
    server_table.finish()

    ice_table = _Table(top.take("ice", {}, lambda v, p: v), ("ice",), out)
    ice = IceConfig(
        addresses=ice_table.take("addresses", (), _array_of(_ip_address)),
        announced_ip=ice_table.take("announced_ip", None, _ip_address),
        udp_ports=ice_table.take("udp_ports", None, _udp_ports),
    )
    ice_table.finish()

    media_table = _Table(top.take("media", {}, lambda v, p: v), ("media",), out)
    media = MediaConfig(workers=media_table.take("workers", "auto", _workers))
    media_table.finish()

    turn_table = _Table(top.take("turn", {}, lambda v, p: v), ("turn",), out)
    turn_host, turn_port = turn_table.take("listen", ("0.0.0.0", 3478), _listen)
    tls_listen = turn_table.take("tls_listen", None, _listen)
    turn = TurnConfig(
        enabled=turn_table.take("enabled", False, _boolean),
        host=turn_host,
        port=turn_port,
        tls_host=tls_listen[0] if tls_listen else None,
        tls_port=tls_listen[1] if tls_listen else None,
        relay_ports=turn_table.take("relay_ports", (49152, 65535), _port_range),
        realm=turn_table.take("realm", "videoroomd", _realm),
        secret=turn_table.take("secret", None, _secret),
        credential_lifetime=turn_table.take("credential_lifetime", 43200.0, _seconds(60, 7 * 86400)),
        max_lifetime=turn_table.take("max_lifetime", 3600.0, _seconds(60, 3600)),
        max_allocations=turn_table.take("max_allocations", 1000, _integer(1, 100000)),
        max_allocations_per_user=turn_table.take("max_allocations_per_user", 8, _integer(1, 1000)),
        bandwidth_per_user=turn_table.take("bandwidth_per_user", 10000, _integer(0, 10000000)),
    )
    if tls_listen and server.tls_cert is None:
        out.add(("turn", "tls_listen"), "TURN over TLS needs the server's certificate: set [server] tls_cert and tls_key")
    turn_table.finish()

    log_table = _Table(top.take("log", {}, lambda v, p: v), ("log",), out)
    log = LogConfig(
        level=log_table.take("level", "info", _choice(LOG_LEVELS)),
        format=log_table.take("format", "auto", _choice(LOG_FORMATS)),
        file=log_table.take("file", None, _path_under(root)),
    )
    log_table.finish()

    defaults_table = _Table(top.take("defaults", {}, lambda v, p: v), ("defaults",), out)
    defaults = _room_settings(defaults_table, RoomConfig(name=""), root)
    defaults_table.finish()

    rooms_table = _Table(top.take("rooms", {}, lambda v, p: v), ("rooms",), out)
    rooms: dict[str, RoomConfig] = {}
    for name, body in rooms_table.data.items():
        path = ("rooms", name)
        if not is_room_name(name):
            out.add(path, ROOM_NAME_RULE)
            continue
        room_table = _Table(body, path, out)
        rooms[name] = _room_settings(room_table, defaults.named(name), root)
        room_table.finish()
    rooms_table.data = {}
    top.finish()

    if out.problems:
        raise ConfigError(out.problems)
    return Config(source=source, server=server, ice=ice, media=media, turn=turn, log=log, defaults=defaults, rooms=rooms)
