"""Accepting a publisher's simulcast layers in aiortc 1.16's answers (asyncio side, aiortc's internals).

aiortc neither writes ``a=rid``/``a=simulcast`` in an answer nor negotiates
the RTP stream id header extensions: a browser that offers three layers and
gets such an answer sends one. For each sending mid given here the answer
accepts the layers: the rtp-stream-id and repaired-rtp-stream-id extensions
are added to that transceiver's negotiated extensions, with the ids of the
client's offer (so aiortc parses them on the connection's transport, and
writes their ``a=extmap`` lines), and the answer's m-section gets
``a=rid:X recv`` lines and ``a=simulcast:recv`` (written by
:mod:`videoroomd.sdp.sections`). Only the transceivers of those mids are
touched; aiortc's module-level extension list stays as it is, so
connections without simulcast negotiate exactly what they did.
"""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

from ....sdp.sections import REPAIRED_RID_URI, RID_URI


def negotiate_stream_ids(transceiver, ids: dict[str, int]) -> bool:
    """Add the RTP stream id extensions of the offer (``ids``: URI -> id) to ``transceiver``'s
    negotiated extensions. Call after ``setRemoteDescription`` (which sets them anew) and
    before ``createAnswer``. False when the offer has no rtp-stream-id extension (the
    layers then cannot be told apart: the mid stays without simulcast)."""
    if RID_URI not in ids:
        return False
    extensions = [e for e in transceiver._headerExtensions if e.uri not in (RID_URI, REPAIRED_RID_URI)]
    taken = {e.id for e in extensions}
    for uri in (RID_URI, REPAIRED_RID_URI):
        if uri in ids and ids[uri] not in taken:
            extensions.append(RTCRtpHeaderExtensionParameters(id=ids[uri], uri=uri))
    transceiver._headerExtensions = extensions
    return True
