"""Reading and editing SDP by m-section: the offer's RTP stream id extensions, the answer's layers and bandwidth (pure).

The answer aiortc writes lacks what a simulcast publisher needs: for each
mid given, :func:`answer_with_layers` adds ``a=rid:X recv`` lines and
``a=simulcast:recv``, and :func:`answer_with_bandwidth` adds a ``b=AS``
limit to a publisher's video m-sections (a room's ``max_video_bitrate``:
browsers cap what they send on it from the start, before any REMB reaches
them). :func:`offered_extension_ids` reads the ids the offer gave the RTP
stream id extensions, for the answer to negotiate the same.
"""

from __future__ import annotations

import re

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


def _mid(section: list[str]) -> str | None:
    """The ``a=mid`` of one m-section's lines, if it has one."""
    return next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)


def offered_extension_ids(offer_sdp: str) -> dict[str, dict[str, int]]:
    """mid -> {extension URI -> id} of each m-section of an offer (the RTP stream id ones only)."""
    out: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in offer_sdp.splitlines():
        if line.startswith("m="):
            current = {}
        elif current is not None and line.startswith("a=mid:"):
            out[line[6:].strip()] = current
        elif current is not None:
            match = _EXTMAP.match(line)
            if match and match.group(2) in (RID_URI, REPAIRED_RID_URI):
                current[match.group(2)] = int(match.group(1))
    return out


def answer_with_layers(answer_sdp: str, layers: dict[str, list[str]]) -> str:
    """``answer_sdp`` with ``a=rid:X recv`` lines and ``a=simulcast:recv`` added to the
    m-section of each mid in ``layers`` (mid -> RIDs, low to high); pure text."""
    if not layers:
        return answer_sdp
    newline = "\r\n" if "\r\n" in answer_sdp else "\n"
    lines = answer_sdp.split(newline)
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        mid = _mid(section)
        out.extend(section)
        rids = layers.get(mid) if mid is not None else None
        if rids and section and section[0].startswith("m="):
            while out and out[-1] == "":
                out.pop()  # the text's final newline comes back below
            out.extend(f"a=rid:{rid} recv" for rid in rids)
            out.append("a=simulcast:recv " + ";".join(rids))
        section.clear()

    for line in lines:
        if line.startswith("m="):
            flush()
        section.append(line)
    flush()
    text = newline.join(out)
    return text if text.endswith(newline) else text + newline


def answer_with_bandwidth(answer_sdp: str, mids: set[str], bps: int) -> str:
    """``answer_sdp`` with ``b=AS:<kbit/s>`` (rounded down, at least 1) after the ``c=`` line of
    each m-section whose mid is in ``mids``; pure text."""
    if not mids:
        return answer_sdp
    newline = "\r\n" if "\r\n" in answer_sdp else "\n"
    sections = answer_sdp.split(newline + "m=")
    out = [sections[0]]
    limit = f"b=AS:{max(1, bps // 1000)}"
    for section in sections[1:]:
        lines = section.split(newline)
        mid = _mid(lines)
        if mid in mids and not any(line.startswith("b=") for line in lines):
            at = next((i + 1 for i, line in enumerate(lines) if line.startswith("c=")), 1)
            lines.insert(at, limit)
        out.append(newline.join(lines))
    return (newline + "m=").join(out)
