"""ICE candidates in SDP text: the fields of one candidate line, and the host candidates of a description (pure).

A candidate line (RFC 8839 §5.1) is ``candidate:FOUNDATION COMPONENT
TRANSPORT PRIORITY ADDRESS PORT typ TYPE [name value]...``, with or without
its ``a=`` and ``candidate:`` prefixes.
"""

from __future__ import annotations

import re
from typing import Callable

# The host candidates' lines of a whole description: the sockets it offers.
_HOST_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ (udp) \d+ (\S+) (\d+) typ host", re.MULTILINE | re.IGNORECASE)
_HOST_ADDRESS = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)", re.MULTILINE)


def _words(candidate: str) -> list[str]:
    if candidate.startswith("a="):
        candidate = candidate[2:]
    return (candidate.split(":", 1)[1] if candidate.startswith("candidate:") else candidate).split()


def candidate_host(candidate: str) -> str | None:
    """The connection address of a candidate line (``a=`` and ``candidate:`` prefixes optional)."""
    words = _words(candidate)
    return words[4] if len(words) > 4 else None


def candidate_ufrag(candidate: str) -> str | None:
    """The ``ufrag`` extension attribute of a candidate line, if it has one."""
    words = _words(candidate)
    for name, value in zip(words[8::2], words[9::2]):
        if name == "ufrag":
            return value
    return None


def host_candidates(sdp: str) -> list[tuple[str, int]]:
    """The (address, port) of each UDP host candidate in ``sdp``: the media sockets it offers."""
    return [(m.group(2), int(m.group(3))) for m in _HOST_CANDIDATE.finditer(sdp)]


def announce_address(sdp: str, address: str | None) -> str:
    """Put ``address`` in place of the host candidates' addresses (a server behind 1:1 NAT)."""
    if not address:
        return sdp
    return _HOST_ADDRESS.sub(lambda m: f"{m.group(1)}{address}{m.group(3)}", sdp)


def keep_candidates(sdp: str, keep: Callable[[str], bool]) -> str:
    """``sdp`` (CRLF lines) without the ``a=candidate`` lines whose address ``keep`` says no to."""
    lines = sdp.split("\r\n")
    kept = [line for line in lines if not line.startswith("a=candidate:") or keep(candidate_host(line) or "")]
    return "\r\n".join(kept)
