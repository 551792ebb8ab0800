"""Which names a request may call the daemon by (Host), and who may see the admin view (pure code).

A browser on a page of evil.example whose name resolves to 127.0.0.1 (DNS
rebinding) sends ``Host: evil.example``: only the names in ``[server]
hostnames`` (by default the listen address and the loopback names) are
answered, so such a page reads nothing and opens no socket.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Mapping

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
WILDCARDS = frozenset({"0.0.0.0", "::"})
# Headers that say a proxy relayed the request (so the peer address is the proxy's, not the client's).
PROXY_HEADERS = frozenset({
    "forwarded", "via", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "x-originating-ip",
    "x-cluster-client-ip", "fastly-client-ip", "client-ip", "x-remote-ip", "x-remote-addr", "x-proxyuser-ip",
})
PROXY_PREFIXES = ("x-forwarded-",)
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``"Example.org:8080"`` → ``("example.org", 8080)``; ``"[::1]"`` → ``("[::1]", None)``; None when malformed."""
    text = value.strip().lower()
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[: end + 1], text[end + 1:]
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return None
    else:
        name, colon, port_text = text.partition(":")
        rest = colon + port_text
        if not _NAME.fullmatch(name) or len(name) > 253:
            return None
    if rest:
        if not rest.startswith(":") or not rest[1:].isascii() or not rest[1:].isdigit() or len(rest) > 6:
            return None
        port = int(rest[1:])
        if not 0 < port < 65536:
            return None
    return name, port


def host_name(host: str) -> str:
    """A listen address as it appears in a Host header: IPv6 in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class HostPolicy:
    """The Host names a request is answered for."""

    def __init__(self, hostnames: tuple[str, ...] | None, listen_host: str):
        """``hostnames`` from the config (None: unset); ``listen_host`` the configured listen address."""
        self.any = hostnames is None and listen_host in WILDCARDS
        names = hostnames if hostnames is not None else (host_name(listen_host), *LOOPBACK_NAMES)
        self.allowed = [parsed for parsed in map(split_host, names) if parsed is not None]

    def accepts(self, host: str | None, *, loopback_peer: bool = False) -> bool:
        """Whether to answer a request with this Host header.

        A loopback name from a loopback peer is always answered (``videoroomd
        rooms --live`` asks so): a rebinding page sends its own name, never these.
        """
        if self.any:
            return True
        parsed = split_host(host) if host is not None else None
        if parsed is None:
            return False
        if loopback_peer and parsed[0] in LOOPBACK_NAMES:
            return True
        name, port = parsed
        return any(name == allowed and (allowed_port is None or port == allowed_port)
                   for allowed, allowed_port in self.allowed)


def is_loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_loopback_host(host: str | None) -> bool:
    """A Host that names this machine's loopback (with any port)."""
    parsed = split_host(host) if host is not None else None
    return parsed is not None and parsed[0] in LOOPBACK_NAMES


def proxy_headers(headers: Mapping[str, str]) -> list[str]:
    """The names of the headers that say a proxy relayed the request."""
    return [name for name in headers if name in PROXY_HEADERS or name.startswith(PROXY_PREFIXES)]
