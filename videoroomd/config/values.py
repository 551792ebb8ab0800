"""The checks one TOML value must pass, each a converter ``(value, dotted path) -> typed value`` (pure code).

A converter raises :class:`Invalid` saying what it expected; the validator
places that message at the key's line. Range and choice converters carry
their limits as attributes (``bounds``, ``choices``) so that what documents
them (the man page test) reads the same limits the check uses.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Callable

from ..http.hosts import split_host
from .redis_url import check as check_redis_url
from .webhook_url import MAX_URLS
from .webhook_url import check as check_webhook_url

Converter = Callable[[Any, tuple[str, ...]], Any]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
_NODE_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_BITRATE = re.compile(r"\A([0-9]{1,9})(k|M)?\Z")
VIDEO_BITRATE_RANGE = (100_000, 100_000_000)  # bits/s: below, not even the lowest layer fits; above, no uplink


class Invalid(Exception):
    """A value a converter refuses; the text says what was expected."""


def describe(value: Any) -> str:
    """A TOML value as an error message names it."""
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


def string(value: Any, _path: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    return value


def nonempty_string(value: Any, path: tuple[str, ...]) -> str:
    text = string(value, path)
    if not text:
        raise Invalid("must not be empty")
    return text


def boolean(value: Any, _path: tuple[str, ...]) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def integer(low: int, high: int) -> Converter:
    def convert(value: Any, _path: tuple[str, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"expected an integer from {low} to {high}, got {describe(value)}")
        return value

    convert.bounds = (low, high)  # type: ignore[attr-defined]
    return convert


def seconds(low: float, high: float) -> Converter:
    def convert(value: Any, _path: tuple[str, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise Invalid(f"expected a number of seconds from {low:g} to {high:g}, got {describe(value)}")
        return float(value)

    convert.bounds = (low, high)  # type: ignore[attr-defined]
    return convert


def choice(options: tuple[str, ...]) -> Converter:
    def convert(value: Any, path: tuple[str, ...]) -> str:
        text = string(value, path)
        if text not in options:
            raise Invalid(f"expected one of {', '.join(repr(o) for o in options)}, got {text!r}")
        return text

    convert.choices = options  # type: ignore[attr-defined]
    return convert


def array_of(item: Converter, expected: str = "an array") -> Converter:
    """A converter for an array whose items ``item`` converts; errors name the item's position."""

    def convert(value: Any, path: tuple[str, ...]) -> tuple:
        if not isinstance(value, list):
            raise Invalid(f"expected {expected}, got {describe(value)}")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element, path))
            except Invalid as invalid:
                raise Invalid(f"item {index + 1}: {invalid}") from None
        return tuple(out)

    return convert


def parse_bitrate(value: Any) -> int:
    """A bit rate in bits/s from an integer or a string such as "2500k" or "2M" (k = 1000,
    M = 1000000); raises ValueError saying what it expected."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _BITRATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'expected bits per second: an integer, or a string such as "2500k" or "2M", got {describe(value)}')
    return int(match.group(1)) * {None: 1, "k": 1000, "M": 1_000_000}[match.group(2)]


def video_bitrate(value: Any, _path: tuple[str, ...]) -> int:
    try:
        bits = parse_bitrate(value)
    except ValueError as error:
        raise Invalid(str(error)) from None
    low, high = VIDEO_BITRATE_RANGE
    if not low <= bits <= high:
        raise Invalid(f"expected from {low} (100k) to {high} (100M) bits per second, got {describe(value)}")
    return bits


def workers(value: Any, _path: tuple[str, ...]) -> int | str:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 256):
        return value
    raise Invalid(f'expected "auto" or a number of worker processes from 0 to 256, got {describe(value)}')


def ip_address(value: Any, path: tuple[str, ...]) -> str:
    text = string(value, path)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise Invalid(f"expected an IPv4 or IPv6 address, got {text!r}") from None


def network(value: Any, path: tuple[str, ...]) -> str:
    """An address or a CIDR block (``"10.0.0.0/8"``, ``"::1"``), as its network in canonical form."""
    text = string(value, path)
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise Invalid(f"expected an IPv4 or IPv6 address or CIDR block (\"10.0.0.0/8\"), got {text!r}") from None


def is_hostname(text: str) -> bool:
    """Whether ``text`` is a DNS host name (labels of letters, digits and '-')."""
    return _HOSTNAME.match(text) is not None


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
    elif not is_hostname(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not a host name or address") from None
    return host, port


def listen(value: Any, path: tuple[str, ...]) -> tuple[str, int]:
    try:
        return parse_listen(string(value, path))
    except ValueError as error:
        raise Invalid(str(error)) from None


def udp_ports(value: Any, path: tuple[str, ...]) -> tuple[int, int]:
    """``"FIRST-LAST"`` (or ``[FIRST, LAST]``, as relay_ports), ports from 1024 to 65535."""
    if isinstance(value, str):
        first, dash, last = value.partition("-")
        if not (dash and first.strip().isdigit() and last.strip().isdigit()):
            raise Invalid(f'expected "FIRST-LAST", a port range such as "50000-50100", got {describe(value)}')
        low, high = int(first), int(last)
        if not 1024 <= low <= high <= 65535:
            raise Invalid(f'expected "FIRST-LAST", two ports from 1024 to 65535 with FIRST <= LAST, got {describe(value)}')
        return low, high
    return port_range(value, path)


def port_range(value: Any, _path: tuple[str, ...]) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1024 <= v <= 65535 for v in value)
            or value[0] > value[1]):
        raise Invalid(f"expected [FIRST, LAST], two ports from 1024 to 65535 with FIRST <= LAST, got {describe(value)}")
    return value[0], value[1]


def realm(value: Any, path: tuple[str, ...]) -> str:
    text = nonempty_string(value, path)
    if len(text) > 127 or not text.isprintable() or '"' in text:
        raise Invalid("expected at most 127 printable characters without '\"'")
    return text


def secret(value: Any, path: tuple[str, ...]) -> str:
    text = string(value, path)
    if len(text) < 16:
        raise Invalid(f"expected at least 16 characters (a guessable secret lets anyone relay), got {len(text)}")
    return text


_KEY_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
MIN_SIGNING_SECRET = 32  # characters: HS256 wants a key of 256 bits (RFC 7518, 3.2)


def signing_keys(value: Any, path: tuple[str, ...]) -> dict[str, str]:
    """A table of token signing keys, name -> secret (at least MIN_SIGNING_SECRET characters)."""
    if not isinstance(value, dict):
        raise Invalid(f"expected a table of name = \"secret\", got {describe(value)}")
    keys: dict[str, str] = {}
    for name, secret_text in value.items():
        if not _KEY_NAME.match(name):
            raise Invalid(f"key name {name[:64]!r}: 1 to 64 letters, digits, '_', '.' or '-'")
        if not isinstance(secret_text, str) or len(secret_text) < MIN_SIGNING_SECRET:
            raise Invalid(f"key {name!r}: expected a secret of at least {MIN_SIGNING_SECRET} characters "
                          "(e.g. `openssl rand -hex 32`)")  # never the value: it is a secret
        keys[name] = secret_text
    return keys


def origin(value: Any, path: tuple[str, ...]) -> str:
    text = string(value, path).lower()
    if text != "*" and not re.fullmatch(r"https?://[^/\s]+", text):
        raise Invalid(f'expected an origin like "https://meet.example.org" (scheme and host, no path) or "*", got {text!r}')
    # Browsers leave the scheme's default port out of Origin; so do we, so that the two compare equal.
    for scheme, port in (("https://", ":443"), ("http://", ":80")):
        if text.startswith(scheme) and text.endswith(port):
            text = text[: -len(port)]
    return text


def hostname(value: Any, path: tuple[str, ...]) -> str:
    text = nonempty_string(value, path).strip().lower()
    if split_host(text) is None:
        raise Invalid(f'expected a host name or address with an optional port, like "meet.example.org", '
                      f'"meet.example.org:8443" or "[2001:db8::1]", got {text!r}')
    return text


def file_path(value: Any, path: tuple[str, ...]) -> Path:
    """A file's path, ``~`` expanded; a relative one is taken from the config file's folder by the validator."""
    return Path(nonempty_string(value, path)).expanduser()


def redis_url(value: Any, path: tuple[str, ...]) -> str:
    """A redis:// or rediss:// URL; the error never repeats its password."""
    try:
        return check_redis_url(nonempty_string(value, path))
    except ValueError as error:
        raise Invalid(str(error)) from None


def node_id(value: Any, path: tuple[str, ...]) -> str:
    """A node's name in the cluster: it is part of Redis key names, so a narrow alphabet."""
    text = nonempty_string(value, path)
    if not _NODE_ID.match(text):
        raise Invalid(f"expected 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, got {text!r}")
    return text


def webhook_urls(value: Any, path: tuple[str, ...]) -> tuple[str, ...]:
    """Up to MAX_URLS http:// or https:// URLs, each once; errors never repeat a URL's path or query."""

    def one(item: Any, item_path: tuple[str, ...]) -> str:
        try:
            return check_webhook_url(nonempty_string(item, item_path))
        except ValueError as error:
            raise Invalid(str(error)) from None

    urls = array_of(one)(value, path)
    if len(urls) > MAX_URLS:
        raise Invalid(f"expected at most {MAX_URLS} URLs, got {len(urls)}")
    if len(set(urls)) != len(urls):
        raise Invalid("a URL is listed twice: each would get every event twice")
    return urls


def webhook_key(value: Any, path: tuple[str, ...]) -> str:
    """The secret the webhook signature is made with: at least MIN_SIGNING_SECRET characters."""
    text = string(value, path)
    if not MIN_SIGNING_SECRET <= len(text) <= 1024:
        raise Invalid(f"expected a secret of {MIN_SIGNING_SECRET} to 1024 characters (e.g. `openssl rand -hex 32`), "
                      f"got {len(text)}")  # never the value: it is a secret
    return text


def event_names(known: tuple[str, ...]) -> Converter:
    """An array of names out of ``known``, each once, in the order given."""
    item = choice(known)

    def convert(value: Any, path: tuple[str, ...]) -> tuple[str, ...]:
        names = array_of(item)(value, path)
        return tuple(dict.fromkeys(names))

    convert.choices = known  # type: ignore[attr-defined]
    return convert
