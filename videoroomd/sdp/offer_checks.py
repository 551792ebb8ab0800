"""What a WebRTC offer must have before the media library sees it (pure code).

aiortc reads an offer with asserts, ``int()`` and dictionary look-ups: a
malformed one ends in an AssertionError, a KeyError or a ValueError whose
text means nothing to the client. :func:`check_offer` refuses those offers
first, with an :class:`~.offer.SdpError` that names the m-line or line and
what is wrong: an m-line in use without ICE credentials (``a=ice-ufrag``,
``a=ice-pwd``), without a DTLS ``a=fingerprint`` or ``a=setup`` role (or
with one that is not ``actpass``, ``active`` or ``passive``), without a
``a=mid``, an audio or video m-line without payload types (or with one that
is not 0-127), a ``c=`` line that is not an address, or an attribute line
aiortc reads numbers from (``a=rtpmap``, ``a=fmtp``, ``a=rtcp-fb``,
``a=extmap``, ``a=ssrc``, ``a=ssrc-group``, ``a=fingerprint``...) that does
not have them where they belong. Each
message is stable: tests pin them. Runs after :func:`.offer.parse` (its
limits hold).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .offer import SdpError

SETUP_ROLES = ("actpass", "active", "passive")
_RULES = {  # attribute -> (pattern of its value, what it must look like)
    "rtpmap": (re.compile(r"\d{1,3} [^/\s]+/\d{1,9}(/\d{1,2})?"), "'a=rtpmap:PT NAME/CLOCK[/CHANNELS]'"),
    "fmtp": (re.compile(r"\d{1,3} \S.*"), "'a=fmtp:PT PARAMETERS'"),
    "rtcp-fb": (re.compile(r"(\d{1,3}|\*) \S+( \S.*)?"), "'a=rtcp-fb:PT|* TYPE [PARAMETER]'"),
    "extmap": (re.compile(r"\d{1,3}(/\w+)? \S+( \S.*)?"), "'a=extmap:ID[/DIRECTION] URI'"),
    "ssrc": (re.compile(r"\d{1,10} [^:\s]+:.*"), "'a=ssrc:NUMBER NAME:VALUE'"),
    "ssrc-group": (re.compile(r"\S+( \d{1,10})+"), "'a=ssrc-group:SEMANTICS NUMBER...'"),
    "fingerprint": (re.compile(r"[\w-]+ [0-9A-Fa-f:]+"), "'a=fingerprint:ALGORITHM HEX:HEX...'"),
    "rtcp": (re.compile(r"\d{1,5}( IN IP[46] \S+)?"), "'a=rtcp:PORT [IN IP4|IP6 ADDRESS]'"),
    "sctp-port": (re.compile(r"\d{1,5}"), "'a=sctp-port:PORT'"),
    "max-message-size": (re.compile(r"\d{1,12}"), "'a=max-message-size:BYTES'"),
    "sctpmap": (re.compile(r"\d{1,5} \S.*"), "'a=sctpmap:NUMBER PROTOCOL...'"),
    "candidate": (re.compile(r"\S+ \d{1,3} \S+ \d{1,10} \S+ \d{1,5} typ \S+( .*)?"),
                  "'a=candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE ...'"),
}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
KINDS = ("audio", "video", "application")
_CONNECTION = re.compile(r"c=IN IP[46] [0-9A-Fa-f.:]+(/\d+)*")
_MEDIA = re.compile(r"m=(\S+) (\d+) (\S+) ?(.*)")


@dataclass
class _Section:
    index: int
    kind: str
    port: int
    formats: list[str]
    attributes: dict[str, str] = field(default_factory=dict)  # the first value of each
    mapped: set[str] = field(default_factory=set)    # payload types with an a=rtpmap
    described: set[str] = field(default_factory=set)  # payload types an a=fmtp describes


def _sections(sdp: str) -> tuple[dict[str, str], list[_Section]]:
    """The session's attributes and each m-section's; raises SdpError for a malformed line."""
    session: dict[str, str] = {}
    sections: list[_Section] = []
    for number, raw in enumerate(sdp.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("m="):
            match = _MEDIA.fullmatch(line)
            if match is None:
                raise SdpError(f"line {number}: malformed m-line: {line[:80]!r}")
            sections.append(_Section(len(sections), match.group(1), int(match.group(2)), match.group(4).split()))
        elif line.startswith("c=") and not _CONNECTION.fullmatch(line):
            raise SdpError(f"line {number}: a c= line must be 'c=IN IP4|IP6 ADDRESS': {line[:80]!r}")
        elif line.startswith("a="):
            name, _, value = line[2:].partition(":")
            rule = _RULES.get(name)
            if rule is not None and not rule[0].fullmatch(value):
                raise SdpError(f"line {number}: a={name} must be {rule[1]}: {line[:80]!r}")
            (sections[-1].attributes if sections else session).setdefault(name, value)
            if sections and name in ("rtpmap", "fmtp"):
                (sections[-1].mapped if name == "rtpmap" else sections[-1].described).add(value.split(" ", 1)[0])
    return session, sections


def check_candidate(candidate: str) -> None:
    """Raise SdpError when ``candidate`` (a trickled one, with or without its ``candidate:``
    prefix; empty: the end of candidates) is not a candidate the media library can read."""
    text = candidate[len("candidate:"):] if candidate.startswith("candidate:") else candidate
    if text.strip() and not _RULES["candidate"][0].fullmatch(text.strip()):
        raise SdpError("candidate: a candidate is 'candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE ...'")


def check_offer(sdp: str) -> None:
    """Raise SdpError naming what ``sdp`` (a client's offer) lacks or has wrong for the media library."""
    session, sections = _sections(sdp)
    for section in sections:
        where = f"m-line {section.index} ({section.kind})"
        if section.kind not in KINDS:
            raise SdpError(f"{where}: only audio, video (and application) m-lines are served")
        if section.port == 0:
            continue  # rejected: nothing is negotiated on it
        attributes = {**session, **section.attributes}
        if not attributes.get("ice-ufrag") or not attributes.get("ice-pwd"):
            raise SdpError(f"{where} has no ICE credentials (a=ice-ufrag and a=ice-pwd)")
        if not attributes.get("fingerprint"):
            raise SdpError(f"{where} has no DTLS fingerprint (a=fingerprint)")
        setup = attributes.get("setup")
        if setup is None:
            raise SdpError(f"{where} has no DTLS role (a=setup)")
        if setup not in SETUP_ROLES:
            raise SdpError(f"{where}: a=setup must be actpass, active or passive, not {setup[:20]!r}")
        if "mid" not in section.attributes:
            raise SdpError(f"{where} has no a=mid")
        if section.kind != "application":
            _check_rtp(section, where)


def _check_rtp(section: _Section, where: str) -> None:
    """Raise SdpError naming what an audio or video m-section in use lacks or has wrong."""
    if not any(direction in section.attributes for direction in DIRECTIONS):
        raise SdpError(f"{where} has no direction (a=sendrecv, a=sendonly, a=recvonly or a=inactive)")
    if "rtcp-mux" not in section.attributes:
        raise SdpError(f"{where} has no a=rtcp-mux (RTP and RTCP must share one port)")
    if not section.formats:
        raise SdpError(f"{where} lists no payload types")
    for pt in section.formats:
        if not pt.isdigit() or len(pt) > 3 or int(pt) > 127 or 72 <= int(pt) <= 76:
            raise SdpError(f"{where}: payload type {pt[:10]!r} is not one of 0-127 (but RTCP's 72-76)")
        if int(pt) >= 96 and pt not in section.mapped:
            raise SdpError(f"{where}: dynamic payload type {pt} has no a=rtpmap")
    for pt in sorted(section.described - section.mapped):
        raise SdpError(f"{where}: a=fmtp for payload type {pt[:10]!r}, which has no a=rtpmap")
