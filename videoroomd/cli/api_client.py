"""The running daemon's server API (``/api/v1``), as the command line asks it: one JSON request at a time.

The daemon is found from the config the command was given (its listen
address, its ``[server] admin_token`` as the credential); every failure is an
:class:`ApiFailed` with a line a person can act on.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from ..config import Config

TIMEOUT = 10.0  # seconds the daemon may take to answer


class ApiFailed(Exception):
    """The daemon could not be asked, or refused; the message says which and why."""


def base_url(config: Config) -> str:
    """Where this machine reaches the daemon that ``config`` describes (a wildcard listen: loopback)."""
    host = config.server.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    scheme = "https" if config.server.tls_cert else "http"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{config.server.port}"


def path_of(*parts: str) -> str:
    """``/api/v1/`` and ``parts``, each quoted (a peer id or a name cannot reach another path)."""
    return "/api/v1/" + "/".join(quote(part, safe="") for part in parts)


def own_daemon_tls(url: str) -> ssl.SSLContext | None:
    """The TLS context for ``url`` on our own daemon, which often has a self-signed certificate:
    trusted on this path only (None for http)."""
    if not url.startswith("https"):
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def call(config: Config, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The daemon's JSON answer to ``method path`` with ``body``; raises ApiFailed."""
    url = base_url(config) + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if config.server.admin_token:
        request.add_header("Authorization", f"Bearer {config.server.admin_token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=own_daemon_tls(url)) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            message = json.loads(text)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = text.strip()
        raise ApiFailed(f"{error.code}: {message}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiFailed(f"no daemon answers at {base_url(config)} ({reason}); is `videoroomd serve` running "
                        "with this config?") from None
