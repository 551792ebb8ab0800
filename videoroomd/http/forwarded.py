"""Who sent a request that came through a reverse proxy: ``X-Forwarded-For`` / ``Forwarded`` read (pure code).

Only a peer in ``[server] trusted_proxies`` is believed. Each proxy appends
the address it got the request from, so the chain is read from the right:
hops that are trusted proxies are skipped, and the first one that is not
is the client. Whatever a client wrote into the header itself lies left of
that, and is never reached. ``X-Forwarded-For`` (what nginx and Caddy set)
is read first; ``Forwarded`` (RFC 7239) when there is none.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """``[server] trusted_proxies`` as networks (the config has checked each already)."""
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One hop as written: ``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]:4711``, ``2001:db8::1``; None otherwise."""
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    return address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` of each element of a Forwarded header, in order ("" where an element has none)."""
    hops = []
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            name, _, text = pair.partition("=")
            if name.strip().lower() == "for":
                found = text
        hops.append(found)
    return hops


def chain(headers: Mapping[str, str]) -> list[str]:
    """The hops a proxy chain says the request came through, the client first (as written, unchecked)."""
    forwarded_for = headers.get("x-forwarded-for")
    if forwarded_for is not None:
        return forwarded_for.split(",")
    forwarded = headers.get("forwarded")
    return _forwarded_for(forwarded) if forwarded is not None else []


def scheme(headers: Mapping[str, str]) -> str | None:
    """The scheme the client used with the nearest proxy: ``X-Forwarded-Proto``'s last value, or the
    last ``proto=`` of ``Forwarded``; None when neither says http or https.

    A proxy that ends TLS talks plain HTTP to the daemon, while the browser's
    Origin says https: the origin check must compare with what the browser used.
    """
    values = headers.get("x-forwarded-proto")
    if values is not None:
        text = values.split(",")[-1]
    else:
        text = ""
        for element in headers.get("forwarded", "").split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "proto":
                    text = value
    text = text.strip().strip('"').lower()
    return text if text in ("http", "https") else None


def trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    parsed = _address(address)
    return parsed is not None and any(parsed in network for network in proxies)


def client_address(peer: str, headers: Mapping[str, str], proxies: tuple[Network, ...]) -> str:
    """The address to count and log a request under: ``peer``'s own, unless it is a trusted proxy.

    From a trusted proxy: the rightmost hop that is not a trusted proxy; the
    leftmost when all are; the nearest trusted hop when the next one cannot be
    read (``unknown``, an obfuscated name, junk); ``peer`` when the proxy said nothing.
    """
    if not proxies or not trusted(peer, proxies):
        return peer
    client = peer
    for hop in reversed(chain(headers)):
        address = _address(hop)
        if address is None:
            return client
        client = str(address)
        if not any(address in network for network in proxies):
            return client
    return client
