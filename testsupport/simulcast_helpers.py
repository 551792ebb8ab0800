"""What the simulcast browser tests share: the media server driven with its messages, the page's
functions and the bottleneck relay (bench.simulcast's), and the test's own copy of a RID parser."""

from __future__ import annotations

import re

from bench.simulcast import PAGE, Bottleneck, MediaDriver, page_with_media, sending_mids, through  # noqa: F401


def offered_rids(sdp: str) -> dict[str, list[str]]:
    """mid -> RIDs sent, for each m-section with ``a=simulcast:send`` (a test's own copy of what
    the control side works out from an offer)."""
    out: dict[str, list[str]] = {}
    for section in sdp.split("\r\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        send = re.search(r"^a=simulcast:send (\S+)", section, re.M)
        if mid and send:
            out[mid.group(1)] = [r.lstrip("~") for r in re.split(r"[;,]", send.group(1))]
    return out
