"""Reading a client's offer: each m-line's mid, kind and direction, the ICE ufrag, the simulcast RIDs (pure).

An offer is read with limits before aiortc sees it: its total size, its
number of m-lines and the length of each line are bounded, and what the
engine relies on (distinct mids, numeric ports) is checked here, so a
client gets an SdpError saying what is wrong instead of a half-applied offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_SDP_BYTES = 128 * 1024   # a browser's offer for a full room is a few tens of KiB
MAX_MEDIA_LINES = 64         # m-lines in one offer
MAX_LINE_LENGTH = 4096       # characters of one line (a=fingerprint, a=ssrc... are far shorter)
MAX_MID_LENGTH = 32          # RFC 8843 keeps mids short; the clients use "0", "1"...
MAX_PORT = 65535
# Distinct a=candidate lines (bundled offers repeat them per m-line). The server sends ICE
# checks to each: a few hundred addresses of the offerer's choosing would aim them elsewhere.
MAX_CANDIDATES = 64


@dataclass(frozen=True)
class MediaLine:
    index: int
    kind: str          # audio, video, application
    mid: str | None
    direction: str     # as the offerer wrote it
    port: int          # 0: rejected m-line


@dataclass(frozen=True)
class SessionDescription:
    media: tuple[MediaLine, ...]
    ice_ufrag: str | None  # the first one found; with BUNDLE all m-lines share it


class SdpError(Exception):
    """An SDP the engine cannot read; the text says what is wrong and on which line."""


def _lines(sdp: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of ``sdp`` within the size limits; raises SdpError past them."""
    if not isinstance(sdp, str):
        raise SdpError("the SDP must be a string")
    size = len(sdp.encode("utf-8", "surrogatepass"))
    if size > MAX_SDP_BYTES:
        raise SdpError(f"the SDP is {size} bytes; at most {MAX_SDP_BYTES} are accepted")
    for number, raw in enumerate(sdp.splitlines(), start=1):
        if len(raw) > MAX_LINE_LENGTH:
            raise SdpError(f"line {number} is {len(raw)} characters long; at most {MAX_LINE_LENGTH} are accepted")
        yield number, raw.strip()


def parse(sdp: str) -> SessionDescription:
    """The m-lines of ``sdp``; raises SdpError (and nothing else) for anything it refuses."""
    media: list[MediaLine] = []
    mids: set[str] = set()
    candidates: set[str] = set()
    bundled: list[tuple[int, str]] = []  # (line number, mid) named by a=group:BUNDLE
    ufrag: str | None = None
    session_direction = "sendrecv"
    current: dict | None = None

    def close_current() -> None:
        if current is not None:
            media.append(MediaLine(current["index"], current["kind"], current["mid"],
                                   current["direction"] or session_direction, current["port"]))

    for number, line in _lines(sdp):
        if line.startswith("m="):
            close_current()
            if len(media) >= MAX_MEDIA_LINES:
                raise SdpError(f"the SDP has more than {MAX_MEDIA_LINES} m-lines")
            parts = line[2:].split()
            port = parts[1].split("/")[0] if len(parts) >= 3 else ""
            if len(parts) < 3 or not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > MAX_PORT:
                raise SdpError(f"line {number}: malformed m-line: {line[:80]!r}")
            current = {"index": len(media), "kind": parts[0], "mid": None, "direction": None, "port": int(port)}
        elif line.startswith("a=mid:") and current is not None:
            mid = line[6:]
            if current["mid"] is not None:
                raise SdpError(f"line {number}: a second a=mid in m-line {current['index']}")
            if not mid or len(mid) > MAX_MID_LENGTH or not mid.isascii() or not mid.isprintable() or " " in mid:
                raise SdpError(f"line {number}: a mid is 1 to {MAX_MID_LENGTH} printable ASCII characters: {mid[:40]!r}")
            if mid in mids:
                raise SdpError(f"line {number}: mid {mid!r} is used by two m-lines")
            mids.add(mid)
            current["mid"] = mid
        elif line.startswith("a=candidate:"):
            candidates.add(line)
            if len(candidates) > MAX_CANDIDATES:
                raise SdpError(f"line {number}: more than {MAX_CANDIDATES} distinct a=candidate lines")
        elif line.startswith("a=group:BUNDLE"):
            bundled += [(number, mid) for mid in line[14:].split()]
        elif line.startswith("a=ice-ufrag:") and ufrag is None:
            ufrag = line[12:]
        elif line[2:] in DIRECTIONS and line.startswith("a="):
            if current is None:
                session_direction = line[2:]
            else:
                current["direction"] = line[2:]
    close_current()
    if not media:
        raise SdpError("the offer has no m-lines")
    for number, mid in bundled:
        if mid not in mids:
            raise SdpError(f"line {number}: a=group:BUNDLE names mid {mid[:40]!r}, which no m-line has")
    return SessionDescription(tuple(media), ufrag)


MAX_RIDS = 8          # layers of one m-line; clients send three (l, m, h)
MAX_RID_LENGTH = 16   # RFC 8851 sets no limit; the clients use one letter
_RID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _rid(text: str, number: int) -> str:
    if not text or len(text) > MAX_RID_LENGTH or not set(text) <= _RID_CHARACTERS:
        raise SdpError(f"line {number}: a RID is 1 to {MAX_RID_LENGTH} letters, digits, '-' or '_': {text[:40]!r}")
    return text


def _simulcast_send(value: str, number: int) -> list[str]:
    """The RIDs of the ``send`` part of an ``a=simulcast:`` value (RFC 8853), in its order:
    the first alternative of each stream, a paused one ("~l") included."""
    parts = value.split()
    if len(parts) % 2:
        raise SdpError(f"line {number}: a=simulcast is 'send LIST' and/or 'recv LIST': {value[:80]!r}")
    rids: list[str] = []
    for direction, streams in zip(parts[::2], parts[1::2]):
        if direction not in ("send", "recv"):
            raise SdpError(f"line {number}: a=simulcast direction {direction[:20]!r} is neither send nor recv")
        if direction != "send":
            continue
        for stream in streams.split(";"):
            first = stream.split(",")[0]
            rids.append(_rid(first[1:] if first.startswith("~") else first, number))
            if len(rids) > MAX_RIDS:
                raise SdpError(f"line {number}: more than {MAX_RIDS} simulcast layers in one m-line")
    return rids


def simulcast_rids(sdp: str) -> dict[str, list[str]]:
    """{mid -> its RIDs, low to high as the offer lists them} for each video m-line of ``sdp``
    that sends simulcast: an ``a=simulcast:send`` list whose RIDs have ``a=rid:X send`` lines.
    Other m-lines are left out. Raises SdpError (and nothing else) for what it refuses, with
    the same limits as :func:`parse` (which an offer passes first)."""
    out: dict[str, list[str]] = {}
    section: dict | None = None

    def close() -> None:
        if section is None or section["kind"] != "video" or section["mid"] is None or section["port"] == "0":
            return
        sent = [rid for rid in section["order"] if rid in section["rids"]]
        if sent:
            out[section["mid"]] = list(dict.fromkeys(sent))

    for number, line in _lines(sdp):
        if line.startswith("m="):
            close()
            parts = line[2:].split()
            section = {"kind": parts[0] if parts else "", "port": parts[1].split("/")[0] if len(parts) > 1 else "",
                       "mid": None, "rids": set(), "order": []}
        elif section is None:
            continue
        elif line.startswith("a=mid:"):
            section["mid"] = line[6:]
        elif line.startswith("a=rid:"):
            fields = line[6:].split()
            if len(fields) < 2 or fields[1] not in ("send", "recv"):
                raise SdpError(f"line {number}: a=rid is 'a=rid:ID send|recv ...': {line[:80]!r}")
            if fields[1] == "send":
                section["rids"].add(_rid(fields[0], number))
                if len(section["rids"]) > MAX_RIDS:
                    raise SdpError(f"line {number}: more than {MAX_RIDS} a=rid lines in one m-line")
        elif line.startswith("a=simulcast:"):
            if section["order"]:
                raise SdpError(f"line {number}: a second a=simulcast in one m-line")
            section["order"] = _simulcast_send(line[12:], number)
    close()
    return out
