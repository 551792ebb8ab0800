"""An HTTP request head and the response to it, as plain data (pure code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, unquote, urlsplit

from .hosts import is_loopback_address, is_loopback_host, proxy_headers


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    remote: tuple[str, int]
    scheme: str = "http"
    body: bytes = field(default=b"", repr=False)  # only the server API's requests have one (http/server.py)

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items()}

    @property
    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except CookieError:
            return {}
        return {k: m.value for k, m in jar.items()}

    @property
    def is_websocket(self) -> bool:
        return "websocket" in self.headers.get("upgrade", "").lower() and "upgrade" in self.headers.get("connection", "").lower()

    @property
    def from_loopback(self) -> bool:
        """Sent from this machine to a loopback name, and not relayed by a proxy (of any kind) on it.

        A page of another site whose name resolves to 127.0.0.1 (DNS rebinding)
        sends its own name as Host, and a proxy on this machine adds its headers:
        neither is this machine's own user.
        """
        if proxy_headers(self.headers) or not is_loopback_host(self.headers.get("host")):
            return False
        return is_loopback_address(self.remote[0])

    @property
    def own_origin(self) -> str:
        return f"{self.scheme}://{self.headers.get('host', '')}".lower()


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, text: str) -> "Response":
        return cls(status, (text.rstrip("\n") + "\n").encode())
