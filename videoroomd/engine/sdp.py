"""Just enough SDP reading for the engine: each m-line's mid, kind and direction, and the ICE ufrag (pure)."""

from __future__ import annotations

from dataclasses import dataclass

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


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
    """An SDP the engine cannot read; the text says what is missing."""


def parse(sdp: str) -> SessionDescription:
    media: list[MediaLine] = []
    ufrag: str | None = None
    session_direction = "sendrecv"
    current: dict | None = None

    def close_current() -> None:
        if current is not None:
            media.append(MediaLine(current["index"], current["kind"], current["mid"],
                                   current["direction"] or session_direction, current["port"]))

    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            close_current()
            parts = line[2:].split()
            if len(parts) < 3 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"malformed m-line: {line!r}")
            current = {"index": len(media), "kind": parts[0], "mid": None, "direction": None,
                       "port": int(parts[1].split("/")[0])}
        elif line.startswith("a=mid:") and current is not None:
            current["mid"] = line[6:]
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
    return SessionDescription(tuple(media), ufrag)
